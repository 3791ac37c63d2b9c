"""Aligned-MTL: make the gradient system well conditioned, then sum.

Paper: "Independent Component Alignment for Multi-Task Learning", Dmitry Senushkin, Nikolay
Patakin, Arseny Kuznetsov, Anton Konushin, CVPR 2023, https://arxiv.org/abs/2305.19000,
Algorithm 1. With the eigendecomposition ``G G^T = V diag(lambda) V^T`` (rank r, eigenvalues
above ``max(lambda) K eps``)::

    B = sqrt(lambda_min) V diag(lambda)^{-1/2} V^T,      w = B 1,      d = w @ G

so that the rows of ``B G`` are orthogonal with equal norms sqrt(lambda_min): the balanced
system has condition number one.

Guarantees: the aligned gradients are orthogonal and equally long, so no task dominates and
none conflicts with the others' aligned gradient; d is positively homogeneous and
permutation-equivariant.

Differences from the reference code: we sum the aligned gradients (``w = B 1``, as LibMTL's
``Aligned_MTL``); torchjd's ``AlignedMTL`` averages them (``B 1 / K``). ``scale_mode``
chooses the scale: "min" (the paper's smallest eigenvalue), "median" or "rmse" (the mean
eigenvalue, as the original code's option).

>>> import torch
>>> G = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
>>> AlignedMTL()(G, torch.ones(2))
tensor([1., 1.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import GramianCombiner
from .options import one_of

SCALE_MODES = ("min", "median", "rmse")


class AlignedMTL(GramianCombiner):
    """Aligned multi-task learning: balance the singular values of the gradient system."""

    name = "aligned"
    option_names = ("scale_mode",)

    def __init__(self, scale_mode: str = "min") -> None:
        self.scale_mode = one_of("scale_mode", scale_mode, SCALE_MODES)

    def weights(self, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...] | None = None
                ) -> Tensor:
        K = gramian.shape[0]
        eigenvalues, V = torch.linalg.eigh(gramian)
        tolerance = eigenvalues.max() * K * torch.finfo(gramian.dtype).eps
        kept = eigenvalues > tolerance
        if not kept.any():
            return torch.ones(K, dtype=gramian.dtype)
        eigenvalues, V = eigenvalues[kept], V[:, kept]
        scale = {
            "min": eigenvalues.min(),
            "median": eigenvalues.median(),
            "rmse": eigenvalues.mean(),
        }[self.scale_mode]
        B = scale.sqrt() * (V / eigenvalues.sqrt()) @ V.T
        return B.sum(1)
