"""Layer-wise learning-rate decay: lower layers of the backbone take smaller steps.

Lower layers of a pretrained BERT hold general features that fine-tuning should change little;
upper layers hold the task-specific ones. Discriminative fine-tuning (Howard & Ruder 2018,
ULMFiT, https://arxiv.org/abs/1801.06146) gives every layer its own rate; Sun et al. 2019 ("How
to Fine-Tune BERT for Text Classification?", https://arxiv.org/abs/1905.05583) set them by one
factor xi per layer:

    eta^(l-1) = xi * eta^l,

so with L encoder layers numbered 0..L-1 and the peak rate eta, layer l steps at
eta * xi^(L-1-l), the embeddings at eta * xi^L, and the top layer and the pooler at eta.
xi = 1 is one rate for the whole backbone; Sun et al. found xi = 0.95 best for BERT-base.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .gradients import layer_group


def layer_depth(name: str, num_layers: int) -> int:
    """How many layers a backbone parameter sits below the top: 0 for the last encoder layer and
    the pooler, ``num_layers`` for the embeddings."""
    group = layer_group(name)
    if group.startswith("layer."):
        return num_layers - 1 - int(group.removeprefix("layer."))
    if group == "embeddings":
        return num_layers
    if group == "pooler":
        return 0
    raise ValueError(f"{name!r} is not a BERT parameter (embeddings.*, encoder.layer.N.*, "
                     "pooler.*): cannot give it a layer-wise learning rate")


def layerwise_groups(named_parameters: Sequence[tuple[str, nn.Parameter]], num_layers: int,
                     lr: float, decay: float) -> list[dict]:
    """Optimiser parameter groups for the backbone, one per depth, with learning rate
    ``lr * decay ** depth``; one group at ``lr`` when ``decay`` is 1."""
    if not 0 < decay <= 1:
        raise ValueError(f"layer_lr_decay must be in (0, 1], got {decay}")
    if decay == 1:
        return [{"params": [p for _, p in named_parameters], "lr": lr}]
    by_depth: dict[int, list[nn.Parameter]] = {}
    for name, p in named_parameters:
        by_depth.setdefault(layer_depth(name, num_layers), []).append(p)
    return [{"params": ps, "lr": lr * decay ** depth} for depth, ps in sorted(by_depth.items())]
