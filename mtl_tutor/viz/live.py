"""Live training curves, attached to the trainer as a callback.

>>> from mtl_tutor.viz import LiveCurves
>>> curves = LiveCurves(every_seconds=2.0, notebook=False)
>>> # train(config, callbacks=[curves])

In a notebook the figure is a ``go.FigureWidget`` shown at the first step and redrawn while the
run trains; elsewhere a tqdm bar carries the latest losses and conflict fraction as its postfix.
Either way the redraws are throttled (:class:`Throttle`) and, when training ends, the figure is
saved as HTML (and PNG where kaleido can render) in the run directory or ``save_to``.
``LiveCurves.from_run(run_dir)`` replays a finished run from its ``log.jsonl`` and ``eval.jsonl``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import plotly.graph_objects as go
from tqdm import tqdm

from ..run_log import (
    LOG_FILE,
    EvalRecord,
    StepRecord,
    conflict_fraction,
    eval_records,
    read_evals,
    read_steps,
    step_records,
)
from .export import save_figure
from .live_figure import curve_series, curves_figure
from .notebook import in_notebook, live_and_static_mimebundle, show_figure


class Throttle:
    """Say yes at most once per ``min_seconds`` and once per ``min_steps`` (both must pass).

    ``clock`` is injectable so that tests can drive time.
    """

    def __init__(
        self, min_seconds: float, min_steps: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not min_seconds >= 0:
            raise ValueError(f"min_seconds must be >= 0, got {min_seconds!r}")
        if isinstance(min_steps, bool) or not isinstance(min_steps, int) or min_steps < 1:
            raise ValueError(f"min_steps must be a positive integer, got {min_steps!r}")
        self.min_seconds, self.min_steps, self.clock = min_seconds, min_steps, clock
        self.last_time = -float("inf")
        self.steps_since = min_steps  # the first call passes

    def ready(self) -> bool:
        """Count one step; True (and restart both counts) when both limits have passed."""
        now = self.clock()
        if self.steps_since + 1 >= self.min_steps and now - self.last_time >= self.min_seconds:
            self.last_time, self.steps_since = now, 0
            return True
        self.steps_since += 1
        return False


class LiveCurves:
    """A trainer callback drawing per-task losses, dev metrics and conflict fractions.

    Args:
      every_seconds, every_steps: redraw at most this often (both limits apply).
      window: steps in the trailing window of the conflict fraction.
      save_to: path without extension for the final figure; default ``RUN/live_curves``.
      notebook: force the widget (True) or the progress bar (False); default: detect a kernel.
      clock: time source of the throttle (tests drive it).
    """

    def __init__(
        self,
        every_seconds: float = 2.0,
        every_steps: int = 10,
        window: int = 50,
        save_to: str | Path | None = None,
        notebook: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        self.throttle = Throttle(every_seconds, every_steps, clock)
        self.window = window
        self.save_to = None if save_to is None else Path(save_to)
        self.notebook = in_notebook() if notebook is None else notebook
        self.steps: list[StepRecord] = []
        self.evals: list[EvalRecord] = []
        self.redraws = 0
        self.callback_seconds = 0.0  # time spent inside on_step / on_eval, for benchmarks
        self.saved: list[Path] = []
        self.figure_widget: go.FigureWidget | None = None
        self._bar: tqdm | None = None

    @classmethod
    def from_run(cls, run_dir: str | Path, **options) -> LiveCurves:
        """Curves of a finished run, read from ``run_dir/log.jsonl`` and ``eval.jsonl``."""
        run = Path(run_dir)
        if not (run / LOG_FILE).is_file():
            raise FileNotFoundError(f"run_dir has no {LOG_FILE}: {run}")
        curves = cls(**options)
        curves.steps, curves.evals = read_steps(run), read_evals(run)
        return curves

    # ---- trainer callback ---------------------------------------------------------------
    def on_step(self, record: StepRecord | Mapping) -> None:
        started = time.perf_counter()
        self.steps += step_records([record])
        if not self.notebook:
            if self._bar is None:
                self._bar = tqdm(desc="training", unit="step", dynamic_ncols=True)
            self._bar.update(1)
        if self.throttle.ready():
            self._redraw()
        self.callback_seconds += time.perf_counter() - started

    def on_eval(self, record: EvalRecord | Mapping) -> None:
        started = time.perf_counter()
        self.evals += eval_records([record])
        self._redraw()
        self.callback_seconds += time.perf_counter() - started

    def on_train_end(self, summary: dict) -> None:
        self._redraw()
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        target = self.save_to
        if target is None and not self.notebook and summary.get("run"):
            target = Path(summary["run"]) / "live_curves"
        if target is not None:
            self.saved = save_figure(self.figure(), target)

    # ---- drawing --------------------------------------------------------------------------
    def figure(self) -> go.Figure:
        """The curves so far as a static ``go.Figure``."""
        return curves_figure(self.steps, self.evals, self.window)

    def _redraw(self) -> None:
        self.redraws += 1
        if self.notebook:
            self._draw_widget()
        elif self._bar is not None and self.steps:
            self._bar.set_postfix(self._postfix(), refresh=False)

    def _postfix(self) -> dict[str, str]:
        postfix = {task: f"{loss:.3f}" for task, loss in self.steps[-1].losses.items()}
        conflict = conflict_fraction(self.steps[-self.window:])
        if conflict is not None:
            postfix["conflict"] = f"{conflict:.2f}"
        if self.evals:
            postfix["overall"] = f"{self.evals[-1].metrics.get('overall', float('nan')):.3f}"
        return postfix

    def _draw_widget(self) -> None:
        """Restyle the traces' x and y in place; rebuild only when the set of curves changes."""
        if self.figure_widget is None:
            from IPython.display import display

            self.figure_widget = go.FigureWidget()
            display(self.figure_widget)
        series = curve_series(self.steps, self.evals, self.window)
        traces = self.figure_widget.data
        if [trace.name for trace in traces] != [curve.name for curve in series]:
            show_figure(self.figure_widget, self.figure())
            return
        with self.figure_widget.batch_update():
            for trace, curve in zip(traces, series, strict=True):
                trace.x, trace.y = curve.x, curve.y

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """An interactive plotly figure where plotly renders, with a static copy for saving."""
        figure = self.figure()
        return live_and_static_mimebundle(figure, figure, repr(self), include, exclude)

    def __repr__(self) -> str:
        return f"LiveCurves(steps={len(self.steps)}, evals={len(self.evals)})"

