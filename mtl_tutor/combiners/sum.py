"""The baseline: add the task gradients, ``d = sum_k g_k`` (equal loss weights of one).

Every other combiner's step time is measured against this one. As a :class:`LossWeighting` it
lets the trainer take one backward pass of ``sum_k L_k`` instead of K per-task passes.

>>> import torch
>>> G = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
>>> Sum()(G, torch.ones(2))
tensor([1., 2.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import LossWeighting


class Sum(LossWeighting):
    """``d = G.sum(0)``: the linear scalarisation with every task weight equal to one."""

    name = "sum"

    def weights_from_losses(self, losses: Tensor, tasks: tuple[str, ...]) -> Tensor:
        return torch.ones_like(losses)
