"""Project real task gradients ``G`` [K, P] and a direction ``d`` [P] into 3 drawable coordinates.

Two bases of the row space of ``G``, both built from the K x K Gramian ``M = G G^T`` alone, so no
P x P matrix (and no copy of ``G``) is ever formed. A basis is ``Q = G^T C`` with coefficients
``C`` [K, r] chosen so that ``Q^T Q = C^T M C = I``; then the coordinates of the gradients are
``G Q = M C`` and those of ``d`` are ``Q^T d = C^T (G d)``.

- ``"qr"``: Gram-Schmidt on the rows in task order, the ``Q`` of ``G^T = Q R``: the first task's
  gradient lies on the first axis, the second in the first plane.
- ``"pca"``: the top principal directions of the rows (uncentred): eigenvectors ``v`` of ``M``
  give ``Q`` columns ``G^T v / sqrt(lambda)``.

With K <= 3 both span the same space and only rotate the picture; with K = 4 the 3 axes miss part
of it, and :class:`SpanProjection` says how much of each vector's norm lies outside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

PROJECTION_METHODS = ("qr", "pca")
RANK_TOLERANCE = 1e-10


@dataclass(frozen=True)
class SpanProjection:
    """Coordinates in an orthonormal 3-D basis of the gradients' span, and what falls outside."""

    gradients: np.ndarray  # (K, 3) coordinates of each task gradient
    direction: np.ndarray  # (3,) coordinates of d
    gradient_outside: np.ndarray  # (K,) |g_k - Q Q^T g_k| / |g_k|
    direction_outside: float  # |d - Q Q^T d| / |d|
    method: str


def _gram_schmidt_coefficients(gramian: np.ndarray, dims: int) -> np.ndarray:
    """Columns c_j with Q = G^T C orthonormal, rows taken in order, dependent rows skipped."""
    columns: list[np.ndarray] = []
    for k in range(len(gramian)):
        v = np.zeros(len(gramian))
        v[k] = 1.0
        for c in columns:  # remove the part of g_k along each earlier axis (inner product M)
            v -= (v @ gramian @ c) * c
        norm_sq = float(v @ gramian @ v)
        if norm_sq > RANK_TOLERANCE * max(float(gramian[k, k]), np.finfo(float).tiny):
            columns.append(v / np.sqrt(norm_sq))
        if len(columns) == dims:
            break
    return np.stack(columns, axis=1) if columns else np.zeros((len(gramian), 0))


def _principal_coefficients(gramian: np.ndarray, dims: int) -> np.ndarray:
    """Columns v / sqrt(lambda) for the top eigenpairs of M with lambda above the tolerance."""
    eigenvalues, eigenvectors = np.linalg.eigh(gramian)
    order = np.argsort(eigenvalues)[::-1][:dims]
    keep = [i for i in order if eigenvalues[i] > RANK_TOLERANCE * max(eigenvalues[order[0]], 0)]
    return eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])


def project_onto_span(G: Tensor, d: Tensor, method: str = "qr", dims: int = 3) -> SpanProjection:
    """Coordinates of the rows of ``G`` [K, P] and of ``d`` [P] in ``dims`` axes of span(G)."""
    if method not in PROJECTION_METHODS:
        raise ValueError(f"method must be one of {PROJECTION_METHODS}, got {method!r}")
    if G.dim() != 2 or d.shape != (G.shape[1],):
        raise ValueError(f"G must be [K, P] and d [P]; got {tuple(G.shape)} and {tuple(d.shape)}")
    if dims < 1:
        raise ValueError(f"dims must be at least 1, got {dims}")
    with torch.no_grad():
        gramian = (G @ G.T).double().cpu().numpy()  # (K, K)
        g_dot_d = (G @ d).double().cpu().numpy()  # (K,)
        d_norm_sq = float((d @ d).double())
    find = _gram_schmidt_coefficients if method == "qr" else _principal_coefficients
    C = find(gramian, dims)  # (K, r), r <= dims
    gradients = np.zeros((len(gramian), dims))
    gradients[:, : C.shape[1]] = gramian @ C
    direction = np.zeros(dims)
    direction[: C.shape[1]] = C.T @ g_dot_d
    return SpanProjection(
        gradients=gradients,
        direction=direction,
        gradient_outside=_outside_fraction(np.diag(gramian), (gradients**2).sum(axis=1)),
        direction_outside=float(_outside_fraction(np.array(d_norm_sq), (direction**2).sum())),
        method=method,
    )


def _outside_fraction(norm_sq: np.ndarray, inside_sq: np.ndarray) -> np.ndarray:
    """|v - Q Q^T v| / |v| from |v|^2 and |Q^T v|^2 (0 for a zero vector)."""
    outside_sq = np.clip(norm_sq - inside_sq, 0.0, None)
    return np.sqrt(np.divide(outside_sq, norm_sq, out=np.zeros_like(outside_sq), where=norm_sq > 0))
