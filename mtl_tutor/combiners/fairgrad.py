"""FairGrad: alpha-fair resource allocation between the tasks.

Paper: "Fair Resource Allocation in Multi-Task Learning", Hao Ban, Kaiyi Ji, ICML 2024,
https://arxiv.org/abs/2402.15638, Algorithm 1 (Eq. 4). Maximising the alpha-fair utility
``sum_k <g_k, d>^(1 - alpha) / (1 - alpha)`` over a ball gives ``d = w @ G`` with

    (G G^T) w = w^(-1/alpha),    w > 0

alpha = 0 is the plain sum, alpha = 1 the proportional fairness of Nash-MTL, alpha -> inf
the max-min fairness of MGDA-like methods.

Guarantees: <g_k, d> = w_k^(-1/alpha) > 0 for every task (non-conflicting); d is
permutation-equivariant; scaling G by t scales d by t^((1 - alpha) / (1 + alpha)).

Differences from the official code: the official code solves the equation with
``scipy.optimize.least_squares`` from uniform weights (an approximate, iteration-limited
solve); we solve it exactly by damped Newton on its convex potential
(:func:`~mtl_tutor.combiners.fairness.fair_weights`). Like the official code we do not
normalise or clip d (the trainer's gradient clipping applies). The default alpha = 2 is the
value of the official run scripts.

>>> import torch
>>> G = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
>>> FairGrad(alpha=1.0)(G, torch.ones(2))
tensor([1., 1.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import GramianCombiner
from .fairness import fair_weights
from .options import positive


class FairGrad(GramianCombiner):
    """alpha-fair multi-task optimisation (Ban & Ji, 2024)."""

    name = "fairgrad"
    option_names = ("alpha",)

    def __init__(self, alpha: float = 2.0) -> None:
        self.alpha = positive("alpha", alpha)

    def weights(self, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...] | None = None
                ) -> Tensor:
        return torch.from_numpy(fair_weights(gramian, self.alpha)).to(gramian.dtype)
