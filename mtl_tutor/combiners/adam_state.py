"""A combiner's private ``torch.optim.Adam`` as flat tensors, so ``state_dict()`` stays a
``dict[str, Tensor]`` that checkpoints can store (FAMO's logits, GradNorm's weights,
GradAttention's network)."""

from __future__ import annotations

import torch
from torch import Tensor


def adam_tensors(optimizer: torch.optim.Adam, prefix: str) -> dict[str, Tensor]:
    """Every per-parameter Adam buffer (step, exp_avg, exp_avg_sq) under ``prefix``."""
    flat = {}
    for index, buffers in optimizer.state_dict()["state"].items():
        for key, value in buffers.items():
            flat[f"{prefix}{index}.{key}"] = torch.as_tensor(value).clone()
    return flat


def load_adam_tensors(optimizer: torch.optim.Adam, state: dict[str, Tensor], prefix: str) -> None:
    """Inverse of :func:`adam_tensors` (hyper-parameters stay those of ``optimizer``)."""
    buffers: dict[int, dict[str, Tensor]] = {}
    for name, value in state.items():
        if name.startswith(prefix):
            index, key = name.removeprefix(prefix).split(".", 1)
            buffers.setdefault(int(index), {})[key] = value.clone()
    full = optimizer.state_dict()
    full["state"] = buffers
    optimizer.load_state_dict(full)
