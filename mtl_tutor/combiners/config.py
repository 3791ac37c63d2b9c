"""ConFIG: the direction with equal cosine to every task gradient, given the summed length.

Paper: "ConFIG: Towards Conflict-free Training of Physics Informed Neural Networks", Qiang
Liu, Mengyu Chu, Nils Thuerey, ICLR 2025, https://arxiv.org/abs/2408.11104, Eq. 2::

    u = normalise(U^+ 1),   U = rows g_k / ||g_k||,   d = (sum_k <g_k, u>) u

``U^+ 1 = U^T (U U^T)^+ 1`` is a combination of the rows, so with the cosine matrix
``C = U U^T`` and ``a_k = [(C^+ 1)]_k / ||g_k||`` we have ``u = a @ G / ||a @ G||`` and the
weights ``w = a (1^T G G^T a) / (a^T G G^T a)``, all from the Gramian.

Guarantees: for linearly independent gradients, every task sees the same positive cosine
with d (conflict-free); d is positively homogeneous and permutation-equivariant.

Differences from the official code: none in the arithmetic (torchjd's ``ConFIG`` takes the
pseudo-inverse of the P-wide unit-row matrix; ours is the same vector through the K x K
cosine matrix). Zero gradients get weight zero. We do not implement the momentum variant
(M-ConFIG).

>>> import torch
>>> G = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
>>> ConFIG()(G, torch.ones(2))
tensor([2., 2.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import GramianCombiner


class ConFIG(GramianCombiner):
    """Conflict-free inverse gradients (Liu, Chu & Thuerey, 2024)."""

    name = "config"

    def weights(self, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...] | None = None
                ) -> Tensor:
        norms = gramian.diagonal().clamp(min=0).sqrt()
        inverse_norms = torch.where(norms > 0, 1 / norms, torch.zeros_like(norms))
        cosines = inverse_norms[:, None] * gramian * inverse_norms[None, :]
        a = torch.linalg.pinv(cosines, hermitian=True) @ torch.ones_like(norms) * inverse_norms
        squared_length = a @ gramian @ a
        if squared_length <= 0:
            return torch.zeros_like(a)
        return a * (gramian @ a).sum() / squared_length
