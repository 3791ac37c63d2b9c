"""Task heads: small modules that turn sentence embeddings into a task's prediction.

Every head is built by name through :func:`build_head`. Heads come in two shapes:

- one embedding in (``takes_pair = False``): a single sentence (SST), or a sentence pair encoded
  together as ``[CLS] a [SEP] b [SEP]`` by a cross-encoder (Devlin et al. 2019, BERT's GLUE
  recipe, https://arxiv.org/abs/1810.04805; "CON" in the CS224N reports);
- two embeddings in (``takes_pair = True``): a bi-encoder pair, each sentence encoded alone by
  the shared BERT into u and v (Reimers & Gurevych 2019, Sentence-BERT,
  https://arxiv.org/abs/1908.10084).

=============  ==========  =================================================================
name           takes_pair  output
=============  ==========  =================================================================
sentence-mlp   no          MLP(x)
cross-mlp      no          MLP(x), x the pooled joint encoding of the pair
pair-mlp       yes         MLP([u, v, |u-v|, u*v]) (or a subset of those features, or the
                           symmetric [u+v, |u-v|, u*v]: the same output for (b, a) as (a, b))
pair-sigmoid   yes         5 * sigmoid(MLP(features)): an STS score in (0, 5)
cosine         yes         5 * relu(cos(u, v)): an STS score in [0, 5], trained with MSE
cosine-logit   yes         s * cos(u, v) + b: a paraphrase logit (s, b learnable; s may be fixed)
=============  ==========  =================================================================

Outputs are raw: class logits (B, num_labels) for classification, one logit (B,) for binary
tasks, a score (B,) for regression. The loss lives in :mod:`mtl_tutor.losses`, the decision rule
in :mod:`mtl_tutor.model`.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.tasks import TaskSpec

PAIR_FEATURES = ("u,v", "u,v,|u-v|", "u,v,|u-v|,u*v", "u+v,|u-v|,u*v", "|u-v|,u*v")
SYMMETRIC_PAIR_FEATURES = ("u+v,|u-v|,u*v", "|u-v|,u*v")  # blind to the order of the pair
POOLINGS = ("mean", "cls", "pooler")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Average of the token vectors at non-padding positions: (B, T, C), (B, T) -> (B, C)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def pool(outputs: dict[str, Tensor], attention_mask: Tensor, pooling: str) -> Tensor:
    """Sentence embedding from BERT's outputs: "mean", "cls" ([CLS] vector) or "pooler"."""
    if pooling == "mean":
        return mean_pool(outputs["last_hidden_state"], attention_mask)
    if pooling == "cls":
        return outputs["last_hidden_state"][:, 0]
    if pooling == "pooler":
        return outputs["pooler_output"]
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def mlp(sizes: list[int], dropout: float, activation: str = "relu") -> nn.Sequential:
    """Dropout -> Linear -> act -> ... -> Dropout -> Linear for the given layer widths."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if any(int(s) < 1 for s in sizes):
        raise ValueError(f"hidden_layers must be positive widths, got {sizes[1:-1]}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(ACTIVATIONS[activation]())
        layers += [nn.Dropout(dropout), nn.Linear(int(a), int(b))]
    return nn.Sequential(*layers)


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    return pooling


PAIR_PARTS = {"u": lambda u, v: u, "v": lambda u, v: v, "u+v": torch.add,
              "|u-v|": lambda u, v: (u - v).abs(), "u*v": torch.mul}


def pair_features(u: Tensor, v: Tensor, features: str) -> Tensor:
    """Concatenate the named features of a pair (only those are computed): (B, C), (B, C) ->
    (B, n*C)."""
    return torch.cat([PAIR_PARTS[f](u, v) for f in features.split(",")], dim=-1)


class SentenceHead(nn.Module):
    """MLP on one pooled embedding: a sentence (SST: 5 logits) or a cross-encoded pair.

    hidden_layers: widths of 0, 1 or 2 hidden layers, e.g. (768,). activation: "relu" or "tanh".
    """

    takes_pair = False

    def __init__(self, hidden_size: int, out_features: int, hidden_layers: tuple[int, ...] = (),
                 dropout: float = 0.1, pooling: str = "mean", activation: str = "relu"):
        super().__init__()
        self.pooling = check_pooling(pooling)
        self.out_features = out_features
        self.net = mlp([hidden_size, *hidden_layers, out_features], dropout, activation)

    def forward(self, x: Tensor) -> Tensor:
        y = self.net(x)
        return y.squeeze(-1) if self.out_features == 1 else y


class PairHead(nn.Module):
    """MLP on features of a bi-encoded pair, [u, v, |u-v|, u*v] by default (Sentence-BERT).

    Paraphrase and similarity are symmetric relations, but a head that sees u and v apart can
    learn an order that the data does not have (which question of a Quora pair came first). The
    symmetric features (``SYMMETRIC_PAIR_FEATURES``: u + v in place of u and v) give
    ``head(u, v) == head(v, u)`` by construction.

    output_scale: None for a raw output; a number s for ``s * sigmoid(MLP(...))``, a bounded
    score (the "5 x sigmoid" STS head, s = 5).
    """

    takes_pair = True

    def __init__(self, hidden_size: int, out_features: int = 1, hidden_layers: tuple[int, ...] = (),
                 dropout: float = 0.1, pooling: str = "mean", features: str = "u,v,|u-v|,u*v",
                 activation: str = "relu", output_scale: float | None = None):
        super().__init__()
        if features not in PAIR_FEATURES:
            raise ValueError(f"features must be one of {PAIR_FEATURES}, got {features!r}")
        if output_scale is not None and output_scale <= 0:
            raise ValueError(f"output_scale must be > 0 or None, got {output_scale}")
        self.pooling = check_pooling(pooling)
        self.features = features
        self.out_features = out_features
        self.output_scale = output_scale
        n = len(features.split(","))
        self.net = mlp([n * hidden_size, *hidden_layers, out_features], dropout, activation)

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        y = self.net(pair_features(u, v, self.features))
        y = y.squeeze(-1) if self.out_features == 1 else y
        return y if self.output_scale is None else self.output_scale * torch.sigmoid(y)


class CosineHead(nn.Module):
    """A scaled cosine similarity of the two embeddings: ``scale * cos(u, v) + bias``.

    With ``rectify`` the score is ``scale * relu(cos(u, v))``: the STS head of the CS224N
    PALs + GradVac report (scale 5, trained with MSE against the 0-5 label). Without it, the
    output is a logit for a binary task (Quora): ``scale`` learnable (``learnable_scale``) or
    fixed, and a learnable ``bias`` that moves the decision threshold away from cos = 0.
    """

    takes_pair = True

    def __init__(self, hidden_size: int, out_features: int = 1, pooling: str = "mean",
                 scale: float = 5.0, learnable_scale: bool = False, rectify: bool = True,
                 bias: bool = False):
        super().__init__()
        if out_features != 1:
            raise ValueError(f"a cosine head has one output, got out_features={out_features}")
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.pooling = check_pooling(pooling)
        self.rectify = bool(rectify)
        scale_tensor = torch.tensor(float(scale))
        if learnable_scale:
            self.scale = nn.Parameter(scale_tensor)
        else:
            self.register_buffer("scale", scale_tensor)
        self.bias = nn.Parameter(torch.zeros(())) if bias else None

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        cos = F.cosine_similarity(u, v, dim=-1)  # (B,)
        y = self.scale * (cos.relu() if self.rectify else cos)
        return y if self.bias is None else y + self.bias


def _cosine_logit(hidden_size: int, out_features: int = 1, pooling: str = "mean",
                  scale: float = 10.0, learnable_scale: bool = True,
                  bias: bool = True) -> CosineHead:
    return CosineHead(hidden_size, out_features, pooling, scale, learnable_scale, rectify=False,
                      bias=bias)


HEADS = {"sentence-mlp": SentenceHead, "cross-mlp": SentenceHead, "pair-mlp": PairHead,
         "pair-sigmoid": partial(PairHead, output_scale=5.0), "cosine": CosineHead,
         "cosine-logit": _cosine_logit}
HEAD_NAMES: tuple[str, ...] = tuple(HEADS)
BUILT_BY_THE_MODEL = ("hidden_size", "out_features")  # head arguments that are not options


def default_head(task: TaskSpec, pair_encoding: str = "bi") -> dict:
    """The head a task gets unless told otherwise (name and options)."""
    if task.kind == "single":
        return {"name": "sentence-mlp"}
    if pair_encoding == "cross":
        return {"name": "cross-mlp", "hidden_layers": (256,)}
    return {"name": "pair-mlp", "features": "u,v,|u-v|,u*v", "hidden_layers": (256,)}


def build_head(name: str, hidden_size: int, out_features: int, **options) -> nn.Module:
    """Build a head by name; unknown names or options raise a ValueError listing the valid ones."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; valid heads: {sorted(HEADS)}")
    try:
        return HEADS[name](hidden_size, out_features, **options)
    except TypeError as e:
        raise ValueError(f"bad options for head {name!r}: {options} ({e})") from e

