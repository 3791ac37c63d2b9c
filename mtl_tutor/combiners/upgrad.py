"""UPGrad: project every task gradient onto the dual cone of all of them, then average.

Paper: "Jacobian Descent for Multi-Objective Optimization", Pierre Quinton, Valérian Rey,
2024, https://arxiv.org/abs/2406.16232, Eq. 5 (with the projection of Eq. 3 and
Proposition 1)::

    d = (1/K) sum_i pi_C(g_i),     C = {x : <g_k, x> >= 0 for all k}

and ``pi_C(u @ G) = v @ G`` with ``v = argmin_{v >= u} v^T (G G^T) v``.

Guarantees: d lies in the dual cone, so <g_k, d> >= 0 for every task (non-conflicting); when
no gradients conflict, every g_i is already in C and d = mean of the gradients; d is
positively homogeneous and permutation-equivariant. For two tasks, PCGrad = 2 x UPGrad.

Differences from the reference implementation (torchjd's ``UPGrad``): torchjd solves each
projection with quadprog after regularising the normalised Gramian (``reg_eps = 1e-4`` on its
diagonal), which moves the answer by about that much; we solve the same problem exactly as a
non-negative least squares (:func:`~mtl_tutor.combiners.gramian_qp.dual_cone_weights`).

>>> import torch
>>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
>>> UPGrad()(G, torch.ones(2))
tensor([0.2500, 0.7500])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .base import GramianCombiner
from .gramian_qp import dual_cone_weights


class UPGrad(GramianCombiner):
    """The mean of the gradients' projections onto their dual cone (Quinton & Rey, 2024)."""

    name = "upgrad"

    def weights(self, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...] | None = None
                ) -> Tensor:
        K = gramian.shape[0]
        projections = [dual_cone_weights(gramian, row) for row in np.eye(K) / K]
        return torch.from_numpy(np.sum(projections, axis=0)).to(gramian.dtype)
