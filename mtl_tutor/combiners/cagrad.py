"""CAGrad: the best worst-task improvement within a ball around the average gradient.

Paper: "Conflict-Averse Gradient Descent for Multi-task Learning", Bo Liu, Xingchao Liu,
Xiaojie Jin, Peter Stone, Qiang Liu, NeurIPS 2021, https://arxiv.org/abs/2110.14048,
Algorithm 1. With ``g_0`` the average gradient and ``phi = c^2 ||g_0||^2``::

    max_d min_k <g_k, d>   subject to   ||d - g_0|| <= sqrt(phi)

whose dual over the simplex is ``w* = argmin_w <g_w, g_0> + sqrt(phi) ||g_w||`` with
``g_w = w @ G``, and then ``d = g_0 + sqrt(phi) / ||g_w*|| * g_w*``. In Gramian form
``<g_w, g_0> = w^T (G G^T) 1 / K`` and ``||g_w||^2 = w^T (G G^T) w``.

Guarantees: c = 0 gives the average gradient; as c grows, d moves towards the MGDA
direction; the step converges to a stationary point of the average loss for 0 <= c < 1.
Weights are scale-invariant, so d is positively homogeneous.

Differences from the official code: like it, we solve the dual with SLSQP (scipy), but on the
Gramian divided by its mean diagonal, with the exact gradient and a tolerance of 1e-12 (the
official code uses scipy's defaults); ``rescale`` divides d by (1 + c^2) (1, the official
default), by (1 + c) (2), or not at all (0). When ``||g_w*||`` vanishes (the average is
already Pareto-stationary) we return zero, as torchjd does.

>>> import torch
>>> G = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
>>> CAGrad(c=0.4, rescale=0)(G, torch.ones(2))
tensor([0.7000, 0.7000])
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from .base import GramianCombiner
from .options import non_negative, one_of


class CAGrad(GramianCombiner):
    """Conflict-averse gradient descent (Liu et al., 2021)."""

    name = "cagrad"
    option_names = ("c", "rescale")

    def __init__(self, c: float = 0.4, rescale: int = 1) -> None:
        self.c = non_negative("c", c)
        self.rescale = int(one_of("rescale", rescale, (0, 1, 2)))

    def weights(self, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...] | None = None
                ) -> Tensor:
        A = gramian.detach().to("cpu", torch.float64).numpy()
        K = len(A)
        scale = np.trace(A) / K
        if scale <= 0:
            return torch.zeros(K, dtype=gramian.dtype)
        A = A / scale
        b = A.mean(axis=1)  # (G G^T) 1 / K: inner products with g_0
        radius = self.c * np.sqrt(max(b.mean(), 0.0))  # sqrt(phi) = c ||g_0||

        def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
            norm = np.sqrt(max(w @ A @ w, 1e-30))
            return w @ b + radius * norm, b + radius * (A @ w) / norm

        on_simplex = {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(K)}
        result = minimize(
            objective, np.full(K, 1.0 / K), jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * K,
            constraints=[on_simplex], options={"ftol": 1e-12, "maxiter": 500},
        )
        w = np.clip(result.x, 0.0, None)
        w = w / w.sum()
        gw_norm = np.sqrt(max(w @ A @ w, 0.0))
        if gw_norm < 1e-4:
            return torch.zeros(K, dtype=gramian.dtype)
        weights = 1.0 / K + radius / gw_norm * w
        divisor = {0: 1.0, 1: 1.0 + self.c**2, 2: 1.0 + self.c}[self.rescale]
        return torch.from_numpy(weights / divisor).to(gramian.dtype)
