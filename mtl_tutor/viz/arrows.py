"""Arrows as plotly traces, in 2-D and 3-D.

2-D: one ``Scatter`` from tail to tip whose last marker is plotly's ``arrow`` symbol turned along
the segment (``angleref="previous"``). 3-D: plotly has no arrow trace, so a ``Scatter3d`` shaft
(width in pixels) ends in a ``Cone`` head (size in data units). Every arrow's shaft is the trace
named after the arrow, and its tip is the shaft's last point, which is what tests read.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

TASK_COLORS = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")
DIRECTION_COLOR = "#111111"
REFERENCE_COLOR = "#9a9a9a"


def arrow_traces(
    tip: np.ndarray,
    name: str,
    color: str,
    *,
    tail: np.ndarray | None = None,
    dash: str = "solid",
    width: float = 4.0,
    head_length: float = 0.12,
) -> list[go.Scatter] | list[go.Scatter3d | go.Cone]:
    """Traces drawing the arrow ``tail -> tip`` (tail defaults to the origin); 2 or 3 coordinates.

    ``head_length`` is the 3-D cone's length in data units (2-D heads are sized in pixels).
    """
    tip = np.asarray(tip, dtype=float)
    tail = np.zeros_like(tip) if tail is None else np.asarray(tail, dtype=float)
    if tip.shape not in {(2,), (3,)} or tail.shape != tip.shape:
        raise ValueError(f"tip and tail must both have 2 or 3 coordinates, got {tip.shape}")
    hover = f"{name}<br>" + "(%{x:.3f}, %{y:.3f}" + (", %{z:.3f})" if tip.size == 3 else ")")
    if tip.size == 2:
        return [
            go.Scatter(
                x=[tail[0], tip[0]],
                y=[tail[1], tip[1]],
                mode="lines+markers",
                name=name,
                line={"color": color, "width": width, "dash": dash},
                marker={"symbol": "arrow", "size": [0, 16], "angleref": "previous", "color": color},
                hovertemplate=hover + "<extra></extra>",
            )
        ]
    vector = tip - tail
    length = float(np.linalg.norm(vector))
    head = min(head_length, 0.5 * length)
    unit = vector / length if length > 0 else np.zeros(3)
    shaft_end = tip - head * unit
    shaft = go.Scatter3d(
        x=[tail[0], shaft_end[0], tip[0]],
        y=[tail[1], shaft_end[1], tip[1]],
        z=[tail[2], shaft_end[2], tip[2]],
        mode="lines",
        name=name,
        legendgroup=name,
        line={"color": color, "width": width, "dash": dash},
        hovertemplate=hover + "<extra></extra>",
    )
    cone = go.Cone(
        x=[tip[0]],
        y=[tip[1]],
        z=[tip[2]],
        u=[unit[0] * head],
        v=[unit[1] * head],
        w=[unit[2] * head],
        anchor="tip",
        sizemode="raw",
        sizeref=1.0,
        colorscale=[[0.0, color], [1.0, color]],
        showscale=False,
        showlegend=False,
        legendgroup=name,
        name=f"{name} head",
        hoverinfo="skip",
    )
    return [shaft, cone]


def arrow_tip(trace: go.Scatter | go.Scatter3d) -> np.ndarray:
    """The tip of an arrow drawn by :func:`arrow_traces`, read back from its shaft trace."""
    coordinates = [trace.x[-1], trace.y[-1]]
    if isinstance(trace, go.Scatter3d):
        coordinates.append(trace.z[-1])
    return np.asarray(coordinates, dtype=float)
