"""Task heads: small modules that turn sentence embeddings into a task's prediction.

Every head is built by name through :func:`build_head`. A single-sentence head maps one pooled
embedding u (B, C) to its output; a bi-encoder pair head maps the two embeddings (u, v) of a
sentence pair, each encoded separately by the shared BERT, to one output per pair.

Outputs are raw: class logits (B, num_labels) for classification, one logit (B,) for binary
tasks, a score (B,) for regression. The loss and the decision rule live with the task
(:mod:`mtl_tutor.model`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

PAIR_FEATURES = ("u,v", "u,v,|u-v|", "u,v,|u-v|,u*v")


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
    raise ValueError(f"pooling must be 'mean', 'cls' or 'pooler', got {pooling!r}")


def mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    """Dropout -> Linear -> ReLU -> ... -> Dropout -> Linear for the given layer widths."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        layers += [nn.Dropout(dropout), nn.Linear(a, b)]
    return nn.Sequential(*layers)


class SentenceHead(nn.Module):
    """MLP on one pooled sentence embedding (SST: 5 logits; CFIMDB: 2 logits)."""

    def __init__(self, hidden_size: int, out_features: int, hidden_layers: tuple[int, ...] = (),
                 dropout: float = 0.1, pooling: str = "mean"):
        super().__init__()
        self.pooling = pooling
        self.out_features = out_features
        self.net = mlp([hidden_size, *hidden_layers, out_features], dropout)

    def forward(self, u: Tensor) -> Tensor:
        y = self.net(u)
        return y.squeeze(-1) if self.out_features == 1 else y


class PairHead(nn.Module):
    """MLP on features of a sentence pair's embeddings, [u, v, |u-v|, u*v] by default
    (Reimers & Gurevych 2019, Sentence-BERT, https://arxiv.org/abs/1908.10084)."""

    def __init__(self, hidden_size: int, out_features: int = 1, hidden_layers: tuple[int, ...] = (),
                 dropout: float = 0.1, pooling: str = "mean", features: str = "u,v,|u-v|,u*v"):
        super().__init__()
        if features not in PAIR_FEATURES:
            raise ValueError(f"features must be one of {PAIR_FEATURES}, got {features!r}")
        self.pooling = pooling
        self.features = features
        self.out_features = out_features
        n = len(features.split(","))
        self.net = mlp([n * hidden_size, *hidden_layers, out_features], dropout)

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        parts = {"u": u, "v": v, "|u-v|": (u - v).abs(), "u*v": u * v}
        y = self.net(torch.cat([parts[f] for f in self.features.split(",")], dim=-1))
        return y.squeeze(-1) if self.out_features == 1 else y


HEADS = {"sentence-mlp": SentenceHead, "pair-mlp": PairHead}


def build_head(name: str, hidden_size: int, out_features: int, **options) -> nn.Module:
    """Build a head by name; unknown names or options raise a ValueError listing the valid ones."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; valid heads: {sorted(HEADS)}")
    try:
        return HEADS[name](hidden_size, out_features, **options)
    except TypeError as e:
        raise ValueError(f"bad options for head {name!r}: {options} ({e})") from e
