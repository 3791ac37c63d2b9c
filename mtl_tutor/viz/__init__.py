"""Widgets and figures: gradient geometry, conflict landscapes, live training curves, reports.

Every figure is a plain ``go.Figure`` from a pure function; widgets wrap those in
``go.FigureWidget`` and ipywidgets controls; :func:`save_figure` writes HTML (and PNG via kaleido).
"""

from .export import save_figure
from .geometry import GradientGeometry
from .geometry_figure import combiner_figure, geometry_figure, gradients_from_angles
from .landscape import ConflictLandscape, landscape_figure, trajectories, trajectory
from .live import LiveCurves
from .live_figure import curves_figure
from .reports import (
    conflict_counts_figure,
    layer_conflict_heatmap,
    leaderboard_table,
    quora_errors_table,
    sst_confusion_figure,
    sts_error_figure,
)
from .span import SpanProjection, project_onto_span

__all__ = [
    "ConflictLandscape",
    "GradientGeometry",
    "LiveCurves",
    "SpanProjection",
    "combiner_figure",
    "conflict_counts_figure",
    "curves_figure",
    "geometry_figure",
    "gradients_from_angles",
    "landscape_figure",
    "layer_conflict_heatmap",
    "leaderboard_table",
    "project_onto_span",
    "quora_errors_table",
    "save_figure",
    "sst_confusion_figure",
    "sts_error_figure",
    "trajectories",
    "trajectory",
]
