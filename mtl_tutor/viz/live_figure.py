"""The training-curves figure, from the trainer's step and eval records (pure functions).

Three panels: each task's training loss, the dev metrics, and the conflict fraction: over a
trailing window of steps, the share with a negative cosine for each task pair, and the share
with any conflict. Long runs are thinned to at most ``max_points`` points per curve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..run_log import EvalRecord, StepRecord, eval_records, step_records

EVAL_METRICS = ("sst_acc", "para_acc", "sts_pearson", "overall")
PANELS = ("training loss", "dev metrics", "conflict fraction")


@dataclass(frozen=True)
class Series:
    """One curve: which panel (0, 1, 2) it belongs to, its name and its points."""

    panel: int
    name: str
    x: np.ndarray
    y: np.ndarray


def _thin(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    stride = max(1, int(np.ceil(len(x) / max_points)))
    return x[::stride], y[::stride]


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each position (fewer at the start)."""
    totals = np.concatenate([[0.0], np.cumsum(values, dtype=float)])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (totals[ends] - totals[starts]) / (ends - starts)


def curve_series(
    steps: Sequence[StepRecord | Mapping], evals: Sequence[EvalRecord | Mapping],
    window: int = 50, max_points: int = 2000
) -> list[Series]:
    """The curves of :func:`curves_figure`, in a fixed order for a given set of tasks."""
    steps, evals = step_records(steps), eval_records(evals)
    series: list[Series] = []
    if steps:
        x = np.array([record.step for record in steps], dtype=float)
        for task in steps[0].losses:
            y = np.array([record.losses.get(task, np.nan) for record in steps], dtype=float)
            series.append(Series(0, task, *_thin(x, y, max_points)))
        for pair in steps[0].cosines or {}:
            negative = np.array([record.conflicts(pair) for record in steps], dtype=float)
            series.append(Series(2, pair, *_thin(x, trailing_mean(negative, window), max_points)))
        if steps[0].has_pairs:
            conflict = np.array([record.conflict for record in steps], dtype=float)
            series.append(Series(2, "any pair", *_thin(x, trailing_mean(conflict, window),
                                                      max_points)))
    if evals:
        x = np.array([record.step for record in evals], dtype=float)
        for metric in EVAL_METRICS:
            if metric in evals[0].metrics:
                y = np.array([record.metrics[metric] for record in evals], dtype=float)
                series.append(Series(1, metric, x, y))
    return series


def curves_figure(
    steps: Sequence[StepRecord | Mapping], evals: Sequence[EvalRecord | Mapping],
    window: int = 50, max_points: int = 2000
) -> go.Figure:
    """Losses, dev metrics and conflict fractions against the step."""
    fig = make_subplots(1, 3, subplot_titles=(
        PANELS[0], PANELS[1], f"{PANELS[2]} (last {window} steps)"
    ))
    for curve in curve_series(steps, evals, window, max_points):
        mode = "lines+markers" if curve.panel == 1 else "lines"
        fig.add_trace(go.Scatter(x=curve.x, y=curve.y, name=curve.name, mode=mode,
                                 legendgroup=PANELS[curve.panel]), 1, curve.panel + 1)
    for column in (1, 2, 3):
        fig.update_xaxes(title_text="step", row=1, col=column)
    fig.update_yaxes(range=[0, 1], row=1, col=3)
    fig.update_layout(height=380, margin={"l": 40, "r": 20, "t": 50, "b": 40},
                      uirevision="live-curves")
    return fig
