"""Intermediate constructions drawn under a combiner's direction in the gradient-geometry view.

These are drawing aids computed from the papers' geometry; the combined direction itself always
comes from :func:`mtl_tutor.combiners.get_combiner`.

- PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning", arXiv:2001.06782, Alg. 1):
  a gradient ``g_i`` that conflicts with ``g_j`` (``g_i . g_j < 0``) is replaced by its projection
  onto the normal plane of ``g_j``: ``g_i - (g_i . g_j / |g_j|^2) g_j``. We draw every pairwise
  projection; with two tasks their sum is PCGrad's direction, with more the algorithm applies them
  one after another in a random order.
- MGDA (Sener & Koltun 2018, "Multi-Task Learning as Multi-Objective Optimization",
  arXiv:1810.04650): the direction is the minimum-norm point of the convex hull of the gradients,
  so we shade that hull.
- CAGrad (Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning",
  arXiv:2110.14048, Alg. 1): ``max_d min_i <g_i, d>`` subject to ``|d - g_0| <= c |g_0|`` with
  ``g_0`` the average gradient, so we draw that ball.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
from scipy.spatial import ConvexHull, QhullError

from .arrows import TASK_COLORS, arrow_traces

HULL_COLOR = "rgba(214, 39, 40, 0.18)"
BALL_COLOR = "rgba(31, 119, 180, 0.15)"


def pcgrad_projections(gradients: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """``(i, j, g_i projected onto the normal plane of g_j)`` for every conflicting ordered pair."""
    projections = []
    for i, g_i in enumerate(gradients):
        for j, g_j in enumerate(gradients):
            dot = float(g_i @ g_j)
            norm_sq = float(g_j @ g_j)
            if i != j and dot < 0 and norm_sq > 0:
                projections.append((i, j, g_i - dot / norm_sq * g_j))
    return projections


def cagrad_ball(gradients: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Centre ``g_0`` (the average gradient) and radius ``c |g_0|`` of CAGrad's search ball."""
    center = gradients.mean(axis=0)
    return center, c * float(np.linalg.norm(center))


def pcgrad_traces(gradients: np.ndarray, task_names: Sequence[str], combiner) -> list:
    """Dashed arrows for PCGrad's pairwise projections, coloured like the projected gradient."""
    traces = []
    for i, j, projected in pcgrad_projections(gradients):
        name = f"{task_names[i]} projected off {task_names[j]}"
        traces += arrow_traces(projected, name, TASK_COLORS[i], dash="dot", width=2)
    return traces


def hull_traces(gradients: np.ndarray, task_names: Sequence[str], combiner) -> list:
    """The shaded convex hull of the gradient tips (MGDA searches it for its minimum norm)."""
    name = "convex hull of the gradients"
    dim = gradients.shape[1]
    if dim == 3 and len(gradients) >= 3:
        triples = [
            (a, b, c)
            for a in range(len(gradients))
            for b in range(a + 1, len(gradients))
            for c in range(b + 1, len(gradients))
        ]
        i, j, k = (list(index) for index in zip(*triples, strict=True))
        x, y, z = gradients.T
        return [go.Mesh3d(x=x, y=y, z=z, i=i, j=j, k=k, color="#d62728", opacity=0.18, name=name)]
    vertices = gradients
    if dim == 2 and len(gradients) >= 3:
        try:
            vertices = gradients[ConvexHull(gradients).vertices]
        except QhullError:  # collinear tips: the hull is a segment through all of them
            order = np.argsort(gradients @ (gradients[-1] - gradients[0]))
            vertices = gradients[[order[0], order[-1]]]
    closed = np.vstack([vertices, vertices[:1]])
    if dim == 2:
        return [
            go.Scatter(
                x=closed[:, 0], y=closed[:, 1], mode="lines", fill="toself", name=name,
                fillcolor=HULL_COLOR, line={"color": "#d62728", "width": 1}, hoverinfo="skip",
            )
        ]
    return [
        go.Scatter3d(
            x=closed[:, 0], y=closed[:, 1], z=closed[:, 2], mode="lines", name=name,
            line={"color": "#d62728", "width": 4}, hoverinfo="skip",
        )
    ]


def ball_traces(gradients: np.ndarray, task_names: Sequence[str], combiner) -> list:
    """CAGrad's ball around the average gradient, with the ``c`` the combiner was built with.

    The combiner may rescale its answer (its ``rescale`` option, by default ``1 / (1 + c^2)``),
    so the drawn ``d`` can lie inside the ball rather than on its boundary; the legend says so.
    """
    c = combiner.c
    center, radius = cagrad_ball(gradients, c)
    rescaled = " (d rescaled)" if getattr(combiner, "rescale", 0) else ""
    name = f"ball |d - g0| <= {c:g} |g0|{rescaled}"
    traces = arrow_traces(center, "g0 (average)", "#1f77b4", dash="dash", width=2)
    if gradients.shape[1] == 2:
        angle = np.linspace(0.0, 2.0 * np.pi, 73)
        return traces + [
            go.Scatter(
                x=center[0] + radius * np.cos(angle), y=center[1] + radius * np.sin(angle),
                mode="lines", fill="toself", fillcolor=BALL_COLOR, name=name,
                line={"color": "#1f77b4", "width": 1}, hoverinfo="skip",
            )
        ]
    polar, azimuth = np.meshgrid(np.linspace(0, np.pi, 16), np.linspace(0, 2 * np.pi, 31))
    return traces + [
        go.Surface(
            x=center[0] + radius * np.sin(polar) * np.cos(azimuth),
            y=center[1] + radius * np.sin(polar) * np.sin(azimuth),
            z=center[2] + radius * np.cos(polar),
            opacity=0.2, showscale=False, colorscale=[[0, "#1f77b4"], [1, "#1f77b4"]],
            name=name, showlegend=True, hoverinfo="skip",
        )
    ]


ConstructionTraces = Callable[[np.ndarray, Sequence[str], object], list]

CONSTRUCTIONS: dict[str, ConstructionTraces] = {
    "pcgrad": pcgrad_traces,
    "mgda": hull_traces,
    "cagrad": ball_traces,
}
