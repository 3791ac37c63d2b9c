"""Gradient geometry: K task gradients as arrows, and the direction a combiner makes of them.

Pure functions build a ``go.Figure`` (testable without a browser); :class:`GradientGeometry` wraps
them in a ``go.FigureWidget`` with sliders for each gradient's direction and length, a combiner
dropdown and a "random conflict" button. The combined direction always comes from
:func:`mtl_tutor.combiners.get_combiner`, the same code that trains the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from .arrows import DIRECTION_COLOR, REFERENCE_COLOR, TASK_COLORS, arrow_traces
from .combine import combined_direction, fresh_combiner
from .constructions import CONSTRUCTIONS

DEFAULT_TASK_NAMES = ("sst", "quora", "sts", "task 4")


def gradients_from_angles(
    angles_deg: Sequence[float],
    lengths: Sequence[float],
    elevations_deg: Sequence[float] | None = None,
) -> np.ndarray:
    """Gradients [K, 2] from polar angles, or [K, 3] from azimuths and elevations (degrees)."""
    azimuth = np.radians(np.asarray(angles_deg, dtype=float))
    length = np.asarray(lengths, dtype=float)
    if azimuth.shape != length.shape:
        raise ValueError(f"angles_deg and lengths must match, got {azimuth.shape}, {length.shape}")
    if elevations_deg is None:
        return length[:, None] * np.stack([np.cos(azimuth), np.sin(azimuth)], axis=1)
    elevation = np.radians(np.asarray(elevations_deg, dtype=float))
    if elevation.shape != azimuth.shape:
        raise ValueError(f"elevations_deg must match angles_deg, got {elevation.shape}")
    flat = np.cos(elevation)
    unit = [flat * np.cos(azimuth), flat * np.sin(azimuth), np.sin(elevation)]
    return length[:, None] * np.stack(unit, axis=1)


def angles_from_gradients(gradients: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`gradients_from_angles`: (azimuths, lengths, elevations) in degrees."""
    lengths = np.linalg.norm(gradients, axis=1)
    azimuths = np.degrees(np.arctan2(gradients[:, 1], gradients[:, 0]))
    if gradients.shape[1] == 2:
        return azimuths, lengths, np.zeros_like(lengths)
    ratio = np.divide(gradients[:, 2], lengths, out=np.zeros_like(lengths), where=lengths > 0)
    return azimuths, lengths, np.degrees(np.arcsin(np.clip(ratio, -1.0, 1.0)))


def pairwise_cosines(gradients: np.ndarray) -> np.ndarray:
    """Cosine similarity of every pair of rows [K, K] (0 where a row is zero)."""
    norms = np.linalg.norm(gradients, axis=1)
    norms = norms[:, None]
    unit = np.divide(gradients, norms, out=np.zeros_like(gradients), where=norms > 0)
    return unit @ unit.T


def geometry_figure(
    gradients: np.ndarray,
    direction: np.ndarray,
    *,
    combiner_name: str,
    task_names: Sequence[str] | None = None,
    reference: np.ndarray | None = None,
    constructions: Sequence = (),
    title: str | None = None,
) -> go.Figure:
    """Arrows for each task gradient (rows of ``gradients``), the combined ``direction`` and the
    plain sum ``reference`` (dashed), over the ``constructions`` traces; 2 or 3 coordinates."""
    gradients = np.asarray(gradients, dtype=float)
    K, dim = gradients.shape
    names = list(task_names or DEFAULT_TASK_NAMES[:K])
    if not 2 <= K <= len(TASK_COLORS) or dim not in (2, 3) or len(names) != K:
        raise ValueError(
            f"gradients must be 2-4 rows of 2 or 3 coordinates with one name each, "
            f"got shape {gradients.shape} and names {names}"
        )
    vectors = [gradients, np.asarray(direction, dtype=float)[None]]
    if reference is not None:
        vectors.append(np.asarray(reference, dtype=float)[None])
    extent = 1.15 * max(float(np.abs(np.concatenate(vectors)).max()), 1e-12)
    head = 0.12 * extent
    traces = list(constructions)
    for k in range(K):
        traces += arrow_traces(gradients[k], names[k], TASK_COLORS[k], head_length=head)
    if reference is not None:
        traces += arrow_traces(reference, "sum", REFERENCE_COLOR, dash="dash", head_length=head)
    traces += arrow_traces(
        direction, f"d ({combiner_name})", DIRECTION_COLOR, width=6, head_length=head
    )
    fig = go.Figure(traces)
    axis = {"range": [-extent, extent], "zeroline": True}
    fig.update_layout(
        title=title or f"Task gradients and the {combiner_name} direction",
        uirevision="geometry",  # keep the user's zoom and 3-D camera across redraws
        legend={"orientation": "h", "y": -0.12},
        margin={"l": 20, "r": 20, "t": 50, "b": 20},
        height=520,
    )
    if dim == 2:
        fig.update_xaxes(**axis)
        fig.update_yaxes(**axis, scaleanchor="x", scaleratio=1)
    else:
        fig.update_layout(
            scene={"xaxis": axis, "yaxis": axis, "zaxis": axis, "aspectmode": "cube"}
        )
    return fig


def combiner_figure(
    gradients: np.ndarray,
    combiner_name: str,
    losses: Sequence[float] | None = None,
    task_names: Sequence[str] | None = None,
    seed: int = 0,
) -> go.Figure:
    """:func:`geometry_figure` with the direction of a fresh ``combiner_name`` combiner, the sum
    for reference and the combiner's construction (PCGrad, MGDA, CAGrad) drawn underneath."""
    G = torch.as_tensor(np.asarray(gradients, dtype=float))
    task_losses = torch.ones(G.shape[0], dtype=G.dtype) if losses is None else (
        torch.as_tensor(losses, dtype=G.dtype)
    )
    names = list(task_names or DEFAULT_TASK_NAMES[: G.shape[0]])
    direction = combined_direction(combiner_name, G, task_losses, names, seed).numpy()
    reference = combined_direction("sum", G, task_losses, names).numpy()
    construct = CONSTRUCTIONS.get(combiner_name)
    constructions = [] if construct is None else construct(
        G.numpy(), names, fresh_combiner(combiner_name, G.shape[1], names, seed)
    )
    return geometry_figure(
        G.numpy(), direction, combiner_name=combiner_name, task_names=names,
        reference=reference, constructions=constructions,
    )
