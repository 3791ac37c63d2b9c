"""MGDA: the min-norm point of the convex hull of the task gradients.

Paper: "Multi-Task Learning as Multi-Objective Optimization", Ozan Sener, Vladlen Koltun,
NeurIPS 2018, https://arxiv.org/abs/1810.04650 (the min-norm problem, Eq. 3, after
Désidéri's MGDA, 2012)::

    w* = argmin_{w >= 0, sum w = 1} || sum_k w_k g_k ||^2,        d = w* @ G

Guarantees: <g_k, d> >= ||d||^2 >= 0 for every task (the KKT conditions of the problem), so
no task's loss increases to first order; d = 0 exactly when the point is Pareto-stationary.
Weights are invariant to scaling G, so d is positively homogeneous.

Differences from the official code: the paper's Algorithm 2 runs Frank-Wolfe to a tolerance
(exact closed forms for pairs); we solve the same problem exactly as a non-negative least
squares on the Gramian (:func:`~mtl_tutor.combiners.gramian_qp.min_norm_weights`). We do not
offer the official code's optional gradient normalisations ("l2", "loss", "loss+"), and we
apply the weights to the gradients of the shared parameters (the paper's MGDA-UB applies them
to the gradients of the shared representation instead).

>>> import torch
>>> G = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
>>> MGDA()(G, torch.ones(2))
tensor([1., 1.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import GramianCombiner
from .gramian_qp import min_norm_weights


class MGDA(GramianCombiner):
    """Multiple-gradient descent: the smallest vector in the convex hull of the gradients."""

    name = "mgda"

    def weights(self, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...] | None = None
                ) -> Tensor:
        return torch.from_numpy(min_norm_weights(gramian)).to(gramian.dtype)
