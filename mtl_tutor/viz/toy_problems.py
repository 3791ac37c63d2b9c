"""Two-objective toy problems on the plane, written in torch so autograd gives their Jacobians.

``cagrad_toy``: the problem shared by CAGrad, Nash-MTL and FAMO, from the appendix of
"Conflict-Averse Gradient Descent for Multi-task Learning", Bo Liu, Xingchao Liu, Xiaojie Jin,
Peter Stone, Qiang Liu, NeurIPS 2021, https://arxiv.org/abs/2110.14048. With ``x = (x1, x2)``::

    f1 = log(max(|0.5 (-x1 - 7) - tanh(-x2)|, 5e-6)) + 6
    f2 = log(max(|0.5 (-x1 + 3) + tanh(-x2) + 2|, 5e-6)) + 6
    g1 = ((-x1 + 7)^2 + 0.1 (-x2 - 8)^2) / 10 - 20
    g2 = ((-x1 - 7)^2 + 0.1 (-x2 - 8)^2) / 10 - 20
    c1 = max(tanh(0.5 x2), 0),   c2 = max(tanh(-0.5 x2), 0)
    L1 = c1 f1 + c2 g1,          L2 = c1 f2 + c2 g2

Its two log-valleys meet the Pareto set along a curve in the upper half-plane; the sum of the
losses has a much steeper valley than either task, so plain summation tends to slide along one
task's valley. The starts are those of the CAGrad and Nash-MTL figures.

``imbalanced_bowls`` (ours): two convex quadratics whose curvatures differ by ``scale``::

    L1 = 0.5 |x - a|^2,      L2 = 0.5 * scale * (x - b)^T diag(1, 1/4) (x - b)

The summed gradient is dominated by L2, the same imbalance as a high-loss regression task (STS)
next to a classification task. Being convex, its Pareto set is the curve of minimisers of
``w L1 + (1 - w) L2`` for w in [0, 1] (:func:`bowls_pareto_set`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

LOG_FLOOR = 5e-6


@dataclass(frozen=True)
class ToyProblem:
    """Two losses of a point ``x`` (a tensor of shape [2], or [2, ...] for a whole grid)."""

    name: str
    losses: Callable[[Tensor], Tensor]  # x [2, ...] -> losses [2, ...]
    bounds: tuple[tuple[float, float], tuple[float, float]]  # ((x1 min, max), (x2 min, max))
    starts: tuple[tuple[float, float], ...]
    lr: float  # a step size with which plain gradient steps stay stable
    steps: int
    max_step: float  # longest step allowed (caps the jumps near a log-valley's floor)
    citation: str


def cagrad_toy_losses(x: Tensor) -> Tensor:
    x1, x2 = x[0], x[1]
    f1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), LOG_FLOOR).log() + 6
    f2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), LOG_FLOOR).log() + 6
    g1 = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    g2 = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    c1 = torch.clamp(torch.tanh(0.5 * x2), min=0)
    c2 = torch.clamp(torch.tanh(-0.5 * x2), min=0)
    return torch.stack([c1 * f1 + c2 * g1, c1 * f2 + c2 * g2])


BOWL_A = (-2.0, 0.0)
BOWL_B = (2.0, 1.5)
BOWL_SCALE = 10.0
BOWL_CURVATURE = (1.0, 0.25)


def imbalanced_bowls_losses(x: Tensor) -> Tensor:
    a = torch.tensor(BOWL_A, dtype=x.dtype).reshape(2, *([1] * (x.dim() - 1)))
    b = torch.tensor(BOWL_B, dtype=x.dtype).reshape(2, *([1] * (x.dim() - 1)))
    curvature = torch.tensor(BOWL_CURVATURE, dtype=x.dtype).reshape(2, *([1] * (x.dim() - 1)))
    first = 0.5 * ((x - a) ** 2).sum(0)
    second = 0.5 * BOWL_SCALE * (curvature * (x - b) ** 2).sum(0)
    return torch.stack([first, second])


def bowls_pareto_set(num: int = 101) -> np.ndarray:
    """Exact Pareto set of ``imbalanced_bowls`` [num, 2]: per coordinate, the minimiser of
    ``w L1 + (1 - w) L2`` is ``(w a + (1 - w) s h b) / (w + (1 - w) s h)``, h the curvature."""
    w = np.linspace(0.0, 1.0, num)[:, None]
    sh = BOWL_SCALE * np.asarray(BOWL_CURVATURE)[None]
    return (w * np.asarray(BOWL_A) + (1 - w) * sh * np.asarray(BOWL_B)) / (w + (1 - w) * sh)


TOY_PROBLEMS: dict[str, ToyProblem] = {
    "cagrad_toy": ToyProblem(
        name="cagrad_toy",
        losses=cagrad_toy_losses,
        bounds=((-10.0, 10.0), (-10.0, 10.0)),
        starts=((-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0)),
        lr=0.05,
        steps=600,
        max_step=0.1,
        citation="Liu et al. 2021, CAGrad, arXiv:2110.14048, appendix (also Nash-MTL, FAMO)",
    ),
    "imbalanced_bowls": ToyProblem(
        name="imbalanced_bowls",
        losses=imbalanced_bowls_losses,
        bounds=((-4.0, 4.0), (-3.0, 4.0)),
        starts=((-3.0, 3.0), (3.5, -2.5), (0.0, -2.0)),
        lr=0.05,
        steps=300,
        max_step=1.0,
        citation="mtl-tutor: two quadratic bowls whose curvatures differ tenfold",
    ),
}
