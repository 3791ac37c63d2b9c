"""IMTL-G: the direction with equal projections on every task's unit gradient.

Paper: "Towards Impartial Multi-task Learning", Liyang Liu, Yi Li, Zhanghui Kuang, Jing-Hao
Xue, Yimin Chen, Wenming Yang, Qingmin Liao, Wayne Zhang, ICLR 2021,
https://openreview.net/forum?id=IMPnRXEWpvr, Algorithm 1 (gradient balance, IMTL-G).

Find ``d = w @ G`` with ``sum_k w_k = 1`` such that ``<d, g_k / ||g_k||>`` is the same for
every k. In Gramian form ``G G^T w`` is proportional to the vector of norms
``n_k = ||g_k||``, so::

    w = (G G^T)^+ n / sum((G G^T)^+ n)

Guarantees: every task gets the same directional derivative per unit of its own gradient
(an "impartial" step); weights are scale-invariant, so d is positively homogeneous and
permutation-equivariant. Weights may be negative.

Differences from the official code: the paper solves ``alpha = g_1 U^T (D U^T)^{-1}`` with
differences against task 1; the pseudo-inverse form (torchjd's ``IMTLG``) is equal when the
gradients are independent and still defined when they are not. If ``sum((G G^T)^+ n)``
vanishes (the gradients sum to a point where no impartial step exists) the weights are zero.
We implement only the gradient part (IMTL-G), not the loss-scale part (IMTL-L).

>>> import torch
>>> G = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
>>> IMTL()(G, torch.ones(2))
tensor([0.6667, 0.6667])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import GramianCombiner


class IMTL(GramianCombiner):
    """Impartial multi-task learning, gradient balance (IMTL-G)."""

    name = "imtl"

    def weights(self, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...] | None = None
                ) -> Tensor:
        norms = gramian.diagonal().clamp(min=0).sqrt()
        scale = norms.max()
        if scale == 0:
            return torch.zeros_like(norms)
        v = torch.linalg.pinv(gramian / scale**2, hermitian=True) @ (norms / scale)
        total = v.sum()
        if total.abs() <= 1e-12 * v.abs().sum():
            return torch.zeros_like(v)
        return v / total
