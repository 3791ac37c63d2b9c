"""Conflict landscapes: where each combiner takes plain gradient steps on a two-task toy problem.

>>> from mtl_tutor.viz.landscape import trajectory
>>> trajectory("imbalanced_bowls", "sum", start=(-3.0, 3.0), steps=5).shape
(6, 2)

Each step is ``x <- x - lr * d`` (length capped) with ``d`` from
:func:`mtl_tutor.combiners.get_combiner` on the 2 x 2 Jacobian (rows: the two tasks'
gradients), the same call that trains BERT. The figure
shows contours of a loss (or of the sum), the trajectories from the problem's starts, and the
Pareto set in parameter space next to the Pareto front in loss space.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from mtl_tutor.combiners import COMBINER_NAMES, LossesAfterStep

from .combine import fresh_combiner
from .notebook import live_and_static_mimebundle, show_figure
from .toy_problems import TOY_PROBLEMS, ToyProblem

SURFACES = ("sum", "task 1", "task 2")
TASKS = ("task 1", "task 2")  # the names of the Jacobian's rows
TRAJECTORY_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _problem(problem: str | ToyProblem) -> ToyProblem:
    if isinstance(problem, ToyProblem):
        return problem
    if problem not in TOY_PROBLEMS:
        raise ValueError(f"problem must be one of {tuple(TOY_PROBLEMS)}, got {problem!r}")
    return TOY_PROBLEMS[problem]


def jacobians(problem: str | ToyProblem, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Losses [N, 2] at ``points`` [N, 2] and Jacobians [N, 2, 2] (row k: task k's gradient),
    from one forward and one batched backward pass over all points."""
    x = torch.tensor(points.T, dtype=torch.float64, requires_grad=True)  # (2, N)
    losses = _problem(problem).losses(x)  # (2 tasks, N)
    seeds = torch.eye(2, dtype=torch.float64)[:, :, None].expand(2, 2, x.shape[1])
    (rows,) = torch.autograd.grad(losses, x, grad_outputs=seeds, is_grads_batched=True)
    return losses.detach().numpy().T, rows.permute(2, 0, 1).numpy()  # (N, 2), (N, task, x)


def trajectories(
    problem: str | ToyProblem,
    combiner: str,
    starts: Sequence[Sequence[float]] | None = None,
    steps: int | None = None,
    lr: float | None = None,
    seed: int = 0,
) -> list[np.ndarray]:
    """Paths [n + 1, 2] of ``x <- x - step(lr * d)``, ``d = combine(J(x), L(x))``, per start.

    ``step`` caps the step length at the problem's ``max_step`` (the direction is untouched),
    so a point that lands next to a log-valley's near-infinite gradient is not thrown off the
    map. Each start has its own combiner for the whole path, so stateful methods evolve as in
    training (FAMO is handed the losses after each step). A path ends at its last point with
    finite losses and a finite direction (a loss-based method may take the log of a negative
    loss), so it can be shorter than ``steps + 1``. ``starts``, ``steps`` and ``lr``
    default to the problem's.
    """
    toy = _problem(problem)
    starts = toy.starts if starts is None else starts
    steps = toy.steps if steps is None else steps
    lr = toy.lr if lr is None else lr
    if steps < 0 or not lr > 0:
        raise ValueError(f"steps must be >= 0 and lr > 0, got steps={steps}, lr={lr}")
    combiners = [fresh_combiner(combiner, 2, TASKS, seed) for _ in starts]
    paths = [[np.asarray(start, dtype=float)] for start in starts]
    running = list(range(len(starts)))
    for _ in range(steps):
        losses, J = jacobians(toy, np.stack([paths[i][-1] for i in running]))
        finite = np.isfinite(losses).all(axis=1) & np.isfinite(J).all(axis=(1, 2))
        for row, i in enumerate(running):
            step = np.zeros(2)
            if finite[row]:  # a combiner refuses NaN: the path ends here
                d = combiners[i](torch.as_tensor(J[row]), torch.as_tensor(losses[row]))
                step = lr * d.detach().numpy()
            length = float(np.linalg.norm(step))
            finite[row] &= np.isfinite(length)
            if finite[row] and length > toy.max_step:
                step *= toy.max_step / length
            paths[i].append(paths[i][-1] - step)
        for row, i in enumerate(running):
            if not finite[row]:  # drop the new point, and the old one too if its losses failed
                paths[i].pop()
                if not np.isfinite(losses[row]).all() and len(paths[i]) > 1:
                    paths[i].pop()
        running = [i for row, i in enumerate(running) if finite[row]]
        if not running:
            break
        if LossesAfterStep in combiners[0].events:
            after, _ = jacobians(toy, np.stack([paths[i][-1] for i in running]))
            for row, i in enumerate(running):
                combiners[i].on_event(LossesAfterStep(dict(zip(TASKS, after[row].tolist()))))
    return [np.stack(path) for path in paths]


def trajectory(
    problem: str | ToyProblem,
    combiner: str,
    start: Sequence[float],
    steps: int | None = None,
    lr: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The path [steps + 1, 2] from one ``start``; see :func:`trajectories`."""
    return trajectories(problem, combiner, [start], steps, lr, seed)[0]


def loss_grid(problem: str | ToyProblem, resolution: int = 200) -> tuple[np.ndarray, ...]:
    """(x1 values, x2 values, losses [2, resolution, resolution]) on the problem's bounds."""
    toy = _problem(problem)
    (lo1, hi1), (lo2, hi2) = toy.bounds
    x1, x2 = np.linspace(lo1, hi1, resolution), np.linspace(lo2, hi2, resolution)
    grid = torch.as_tensor(np.stack(np.meshgrid(x1, x2)))  # (2, x2 rows, x1 columns)
    with torch.no_grad():
        return x1, x2, toy.losses(grid).numpy()


def non_dominated(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Mask of the points no other point beats on both objectives (minimisation).

    Sorted by the first objective, a point is non-dominated when its second objective is below
    that of every point before it.
    """
    order = np.lexsort((second, first))
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], second[order][:-1]]))
    mask = np.zeros(len(first), dtype=bool)
    mask[order] = second[order] < best_before
    return mask


def pareto_set(problem: str | ToyProblem, resolution: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Grid points [N, 2] no other grid point dominates, and their losses [N, 2], ordered by the
    first loss: on a grid of spacing h this is a band a few h wide around the true Pareto set."""
    x1, x2, losses = loss_grid(problem, resolution)
    points = np.stack(np.meshgrid(x1, x2), axis=-1).reshape(-1, 2)
    values = losses.reshape(2, -1).T
    mask = non_dominated(values[:, 0], values[:, 1])
    order = np.argsort(values[mask, 0])
    return points[mask][order], values[mask][order]


def landscape_figure(
    problem: str | ToyProblem,
    trajectories: dict[str, list[np.ndarray]],
    surface: str = "sum",
    resolution: int = 150,
) -> go.Figure:
    """Contours of ``surface`` ("sum", "task 1" or "task 2") with each combiner's trajectories
    and the Pareto set (left), and the same trajectories in loss space with the front (right)."""
    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {SURFACES}, got {surface!r}")
    toy = _problem(problem)
    x1, x2, losses = loss_grid(toy, resolution)
    z = {"sum": losses.sum(0), "task 1": losses[0], "task 2": losses[1]}[surface]
    front_x, front_losses = pareto_set(toy)
    fig = make_subplots(1, 2, column_widths=[0.58, 0.42],
                        subplot_titles=(f"{surface} loss over x", "loss 1 vs loss 2"))
    fig.add_trace(go.Contour(x=x1, y=x2, z=z, ncontours=30, colorscale="Viridis", opacity=0.75,
                             showscale=False, name=f"{surface} loss", hoverinfo="skip"), 1, 1)
    pareto_style = {"mode": "markers", "marker": {"color": "black", "size": 2},
                    "legendgroup": "pareto"}
    fig.add_trace(go.Scatter(x=front_x[:, 0], y=front_x[:, 1], name="Pareto set",
                             **pareto_style), 1, 1)
    fig.add_trace(go.Scatter(x=front_losses[:, 0], y=front_losses[:, 1], name="Pareto front",
                             showlegend=False, **pareto_style), 1, 2)
    for index, (name, paths) in enumerate(trajectories.items()):
        color = TRAJECTORY_COLORS[index % len(TRAJECTORY_COLORS)]
        for number, path in enumerate(paths):
            with torch.no_grad():
                path_losses = toy.losses(torch.as_tensor(path.T)).numpy()
            style = {"mode": "lines+markers", "line": {"color": color, "width": 2},
                     "legendgroup": name, "showlegend": number == 0,
                     "marker": {"size": [9] + [0] * (len(path) - 2) + [12],
                                "symbol": ["circle"] + ["circle"] * (len(path) - 2) + ["star"]}}
            fig.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], name=name, **style), 1, 1)
            style["showlegend"] = False
            fig.add_trace(go.Scatter(x=path_losses[0], y=path_losses[1], name=name, **style), 1, 2)
    (lo1, hi1), (lo2, hi2) = toy.bounds
    fig.update_xaxes(range=[lo1, hi1], title_text="x1", row=1, col=1)
    fig.update_yaxes(range=[lo2, hi2], title_text="x2", row=1, col=1)
    fig.update_xaxes(title_text="loss 1", row=1, col=2)
    fig.update_yaxes(title_text="loss 2", row=1, col=2)
    fig.update_layout(title=f"{toy.name}: {toy.citation}", height=520, uirevision=toy.name,
                      margin={"l": 40, "r": 20, "t": 70, "b": 40})
    return fig


@lru_cache(maxsize=128)
def _cached_trajectories(problem: str, combiner: str, steps: int, lr: float) -> list:
    return trajectories(problem, combiner, steps=steps, lr=lr)


class ConflictLandscape:
    """Pick a toy problem, some combiners, the contoured surface, steps and step size; see where
    each combiner goes from every start of the problem. Trajectories are cached."""

    def __init__(
        self,
        problem: str = "cagrad_toy",
        combiners: Sequence[str] = ("sum", "pcgrad"),
        surface: str = "sum",
    ) -> None:
        toy = _problem(problem)
        unknown = [name for name in combiners if name not in COMBINER_NAMES]
        if unknown or not combiners:
            raise ValueError(f"combiners must be names from {COMBINER_NAMES}, got {combiners}")
        if surface not in SURFACES:
            raise ValueError(f"surface must be one of {SURFACES}, got {surface!r}")
        self.problem_dropdown = widgets.Dropdown(options=list(TOY_PROBLEMS), value=toy.name,
                                                 description="problem")
        self.combiner_select = widgets.SelectMultiple(options=list(COMBINER_NAMES),
                                                      value=tuple(combiners), rows=8,
                                                      description="combiners")
        self.surface_toggle = widgets.ToggleButtons(options=list(SURFACES), value=surface,
                                                    description="contours of")
        self.steps_slider = widgets.IntSlider(value=toy.steps, min=10, max=5000, step=10,
                                              description="steps", continuous_update=False)
        self.lr_slider = widgets.FloatLogSlider(value=toy.lr, base=10, min=-4, max=0,
                                                description="lr", continuous_update=False)
        self.figure_widget = go.FigureWidget()
        self._syncing = False
        self.problem_dropdown.observe(self._on_problem, names="value")
        for control in (self.combiner_select, self.surface_toggle, self.steps_slider,
                        self.lr_slider):
            control.observe(self._on_control, names="value")
        self.widget = widgets.VBox([
            widgets.HBox([widgets.VBox([self.problem_dropdown, self.surface_toggle,
                                        self.steps_slider, self.lr_slider]),
                          self.combiner_select]),
            self.figure_widget,
        ])
        self._redraw()

    def _on_problem(self, _change) -> None:
        toy = _problem(self.problem_dropdown.value)
        self._syncing = True  # one redraw for the problem and its default steps and lr
        try:
            self.steps_slider.value, self.lr_slider.value = toy.steps, toy.lr
        finally:
            self._syncing = False
        self._redraw()

    def _on_control(self, _change) -> None:
        if not self._syncing:
            self._redraw()

    def trajectories(self) -> dict[str, list[np.ndarray]]:
        """Each selected combiner's paths from every start of the selected problem."""
        return {
            name: _cached_trajectories(self.problem_dropdown.value, name, self.steps_slider.value,
                                       float(self.lr_slider.value))
            for name in self.combiner_select.value
        }

    def figure(self) -> go.Figure:
        """The current view as a static ``go.Figure``."""
        return landscape_figure(self.problem_dropdown.value, self.trajectories(),
                                self.surface_toggle.value)

    def _redraw(self) -> None:
        show_figure(self.figure_widget, self.figure())

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return live_and_static_mimebundle(self.figure(), self.widget, repr(self), include,
                                          exclude)

    def __repr__(self) -> str:
        return (f"ConflictLandscape(problem={self.problem_dropdown.value!r}, "
                f"combiners={self.combiner_select.value})")
