"""Solve ``(G G^T) w = w^(-1/alpha)``, w > 0: the weights of alpha-fair directions.

Nash-MTL (alpha = 1, Navon et al., 2022) and FairGrad (any alpha > 0, Ban & Ji, 2024) both
look for ``d = w @ G`` with ``<g_k, d> = w_k^(-1/alpha)`` for every task. This equation is the
stationarity condition of the strictly convex function

    f(w) = 1/2 w^T A w - sum_k h(w_k),     h'(x) = x^(-1/alpha)

(``h = log`` for alpha = 1, ``h(x) = x^(1 - 1/alpha) / (1 - 1/alpha)`` otherwise), so damped
Newton on f finds the unique solution to machine precision in a few iterations. We solve on
``A = G G^T / s`` (s the mean diagonal) and undo the scaling exactly:
``w = s^(-alpha / (alpha + 1)) w_A``. A ridge of ``1e-10`` on A keeps the problem bounded when
a zero gradient or a non-negative combination of gradients that cancels makes it degenerate;
such directions then get large but finite weights that contribute (almost) nothing to d.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

RIDGE = 1e-10


def fair_weights(gramian: Tensor, alpha: float, max_iters: int = 100) -> np.ndarray:
    """The positive ``w`` with ``gramian @ w = w ** (-1 / alpha)`` (float64 numpy)."""
    A = gramian.detach().cpu().double().numpy()
    A = (A + A.T) / 2
    K = len(A)
    scale = np.trace(A) / K
    if scale <= 0:
        return np.ones(K)
    A = A / scale + RIDGE * np.eye(K)
    p = 1.0 / alpha

    def potential(w: np.ndarray) -> float:
        barrier = np.log(w).sum() if alpha == 1 else (w ** (1 - p)).sum() / (1 - p)
        return 0.5 * w @ A @ w - barrier

    w = np.diag(A) ** (-alpha / (alpha + 1))  # exact when the gradients are orthogonal
    for _ in range(max_iters):
        gradient = A @ w - w**-p
        if np.linalg.norm(gradient) <= 1e-13 * np.linalg.norm(w**-p):
            break
        hessian = A + np.diag(p * w ** (-p - 1))
        step = -np.linalg.solve(hessian, gradient)
        shrinking = step < 0
        t = min(1.0, 0.99 * np.min(-w[shrinking] / step[shrinking])) if shrinking.any() else 1.0
        value, slope = potential(w), gradient @ step
        while t > 1e-12 and potential(w + t * step) > value + 1e-4 * t * slope:
            t /= 2
        if t <= 1e-12:
            break
        w = w + t * step
    return w * scale ** (-alpha / (alpha + 1))
