"""Small exact quadratic programs on the K x K Gramian, solved as non-negative least squares.

Write the Gramian as ``gramian = R^T R`` with ``R`` [K, K] (from its eigendecomposition), so
that ``||w @ G||^2 = ||R w||^2`` for any weights ``w``. Two problems then become non-negative
least squares, which ``scipy.optimize.nnls`` (Lawson-Hanson active set) solves exactly:

* the min-norm point of the convex hull of the gradients (MGDA), and
* the projection of ``u @ G`` onto the dual cone of the gradients (UPGrad).

Both are invariant to scaling the Gramian, so we first divide it by its mean diagonal; that
keeps the solver's tolerances meaningful from 1e-15 to 1e15 gradient scale. A ridge of
``RIDGE`` (relative to that mean diagonal) makes the solution unique when the gradients are
dependent (a zero gradient, two opposite ones): without it the weight on a direction that
``R`` maps to rounding noise is unbounded, and the noise it multiplies leaks into d.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls
from torch import Tensor

RIDGE = 1e-12


def square_root(gramian: Tensor) -> np.ndarray:
    """``R`` [K, K] with ``R^T R = gramian / mean(diag(gramian))`` (float64 numpy)."""
    matrix = gramian.detach().to("cpu", torch.float64).numpy()
    matrix = (matrix + matrix.T) / 2
    scale = np.trace(matrix) / len(matrix)
    if scale > 0:
        matrix = matrix / scale
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return np.sqrt(np.clip(eigenvalues, 0.0, None))[:, None] * eigenvectors.T


def min_norm_weights(gramian: Tensor) -> np.ndarray:
    """Weights ``w`` on the simplex minimising ``||w @ G||`` (the min-norm point of the hull).

    With ``z = t w`` (``t > 0``, ``w`` on the simplex), ``||R z||^2 + (1 - sum z)^2`` equals
    ``t^2 ||R w||^2 + (1 - t)^2``; minimising over ``t`` leaves ``n / (1 + n)`` with
    ``n = ||R w||^2``, increasing in ``n``. So the non-negative least-squares solution ``z`` of
    ``[R; 1^T] z = [0; 1]`` gives the min-norm weights as ``z / sum(z)``, exactly (with the
    ridge: for the Gramian plus ``RIDGE`` times the identity).
    """
    R = square_root(gramian)
    K = R.shape[0]
    system = np.vstack([R, np.ones((1, K)), np.sqrt(RIDGE) * np.eye(K)])
    target = np.zeros(2 * K + 1)
    target[K] = 1.0
    z, _ = nnls(system, target)
    return z / z.sum()


def dual_cone_weights(gramian: Tensor, u: np.ndarray) -> np.ndarray:
    """Weights ``v`` with ``v @ G`` the projection of ``u @ G`` onto the dual cone of the rows.

    The dual cone is ``{x : <g_k, x> >= 0 for all k}``. By Proposition 1 of Quinton & Rey
    (2024), the projection is ``v @ G`` with ``v = argmin_{v >= u} v^T gramian v``; writing
    ``v = u + z``, ``z >= 0`` minimises ``||R z + R u||^2``: one non-negative least squares
    (plus the ridge ``RIDGE ||z||^2``).
    """
    R = square_root(gramian)
    K = R.shape[0]
    system = np.vstack([R, np.sqrt(RIDGE) * np.eye(K)])
    z, _ = nnls(system, np.concatenate([-R @ u, np.zeros(K)]))
    return u + z
