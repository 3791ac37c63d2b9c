"""The gradient-geometry widget: move K task gradients, pick a combiner, watch its direction.

>>> from mtl_tutor.viz import GradientGeometry
>>> view = GradientGeometry(num_tasks=3, dim=2, combiner="pcgrad")
>>> view.direction.shape
(2,)

``GradientGeometry.from_gradients(G)`` shows a model's real task gradients ``G`` [K, P] projected
onto 3 axes of their span (:mod:`mtl_tutor.viz.span`); the combiner then runs on the full ``G``
and its direction is projected the same way.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from torch import Tensor

from mtl_tutor.combiners import COMBINER_NAMES
from mtl_tutor.combiners.base import check_finite_gradients, gramian_of

from .combine import combined_direction, fresh_combiner
from .constructions import CONSTRUCTIONS
from .geometry_figure import (
    DEFAULT_TASK_NAMES,
    angles_from_gradients,
    geometry_figure,
    gradients_from_angles,
    pairwise_cosines,
)
from .geometry_readout import readout_html
from .notebook import live_and_static_mimebundle, show_figure
from .span import project_onto_span

DEFAULT_ANGLES = (0.0, 135.0, -110.0, -60.0)
DEFAULT_LENGTHS = (1.0, 1.4, 0.8, 1.2)
DEFAULT_ELEVATIONS = (20.0, -10.0, 35.0, -40.0)
MAX_LENGTH = 2.5


class GradientGeometry:
    """Sliders for each gradient's angle(s) and length, a combiner dropdown, a random-conflict
    button, the figure and a readout of cosines and ``<g_k, d>``.

    Args:
      num_tasks: K, from 2 to 4.
      dim: 2 (angle, length) or 3 (azimuth, elevation, length).
      combiner: a name from ``COMBINER_NAMES``; a fresh combiner is built for every redraw.
      task_names: K labels (default sst, quora, sts, task 4).
      losses: the K losses handed to the combiner (loss-based methods read them); default ones.
      seed: seed of the combiners and of the random-conflict button.
    """

    def __init__(
        self,
        num_tasks: int = 3,
        dim: int = 2,
        combiner: str = "pcgrad",
        *,
        task_names: Sequence[str] | None = None,
        losses: Sequence[float] | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(num_tasks, bool) or num_tasks not in (2, 3, 4):
            raise ValueError(f"num_tasks must be 2, 3 or 4, got {num_tasks!r}")
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim!r}")
        if combiner not in COMBINER_NAMES:
            raise ValueError(f"combiner must be one of {COMBINER_NAMES}, got {combiner!r}")
        self.task_names = list(task_names or DEFAULT_TASK_NAMES[:num_tasks])
        if len(self.task_names) != num_tasks:
            raise ValueError(f"task_names must have {num_tasks} names, got {self.task_names}")
        self.losses = torch.ones(num_tasks, dtype=torch.float64) if losses is None else (
            torch.as_tensor(losses, dtype=torch.float64)
        )
        if self.losses.shape != (num_tasks,) or not bool(self.losses.isfinite().all()):
            raise ValueError(f"losses must be {num_tasks} finite values, got "
                             f"{self.losses.tolist()}")
        self.dim = dim
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._model_gradients: tuple[Tensor, Tensor, str, float] | None = None
        self._syncing = False
        self._build_controls(combiner)
        self._redraw()

    @classmethod
    def from_gradients(
        cls,
        G: Tensor,
        losses: Tensor | None = None,
        *,
        task_names: Sequence[str] | None = None,
        combiner: str = "pcgrad",
        method: str = "qr",
        seed: int = 0,
    ) -> GradientGeometry:
        """Show real task gradients ``G`` [K, P] (e.g. from one training step) in 3-D.

        The arrows are ``G`` projected onto 3 axes of its row space (``method`` "qr" or "pca",
        see :func:`project_onto_span`), scaled so the longest is 1. Each combiner runs on the
        full ``G`` and its direction is projected and scaled the same way; the readout says how
        much of ``|d|`` lies outside the drawn axes. Moving a slider leaves the model's
        gradients and continues with the drawn 3-D vectors.
        """
        K = G.shape[0]
        names = list(task_names or DEFAULT_TASK_NAMES[:K])
        check_finite_gradients(gramian_of(G.detach()), names)  # NaN cannot be drawn: say so
        task_losses = torch.ones(K) if losses is None else losses.detach()
        view = cls(K, dim=3, combiner=combiner, task_names=task_names, seed=seed,
                   losses=task_losses.double().tolist())
        projection = project_onto_span(G, G.sum(0), method)
        scale = 1.0 / max(float(np.linalg.norm(projection.gradients, axis=1).max()), 1e-30)
        view._model_gradients = (G.detach(), task_losses.to(G.dtype), method, scale)
        view.set_gradients(projection.gradients * scale, keep_model_gradients=True)
        return view

    # ---- controls -------------------------------------------------------------------------
    def _build_controls(self, combiner: str) -> None:
        self.combiner_dropdown = widgets.Dropdown(
            options=list(COMBINER_NAMES), value=combiner, description="combiner"
        )
        self.combiner_dropdown.add_class("mtl-combiner-dropdown")
        self.random_button = widgets.Button(description="random conflict", icon="random")
        self.random_button.on_click(lambda _: self.randomize_conflict())
        self.angle_sliders, self.elevation_sliders, self.length_sliders = [], [], []
        rows = []
        for k, name in enumerate(self.task_names):
            sliders = {"angle": widgets.FloatSlider(
                value=DEFAULT_ANGLES[k], min=-180, max=180, step=1,
                description="angle°" if self.dim == 2 else "azimuth°",
            )}
            if self.dim == 3:
                sliders["elevation"] = widgets.FloatSlider(
                    value=DEFAULT_ELEVATIONS[k], min=-90, max=90, step=1, description="elevation°"
                )
                self.elevation_sliders.append(sliders["elevation"])
            sliders["length"] = widgets.FloatSlider(
                value=DEFAULT_LENGTHS[k], min=0, max=MAX_LENGTH, step=0.05, description="length"
            )
            for kind, slider in sliders.items():
                slider.add_class(f"mtl-{kind}-{k}")  # e.g. mtl-angle-1, for browser tests
                slider.observe(self._on_slider, names="value")
            self.angle_sliders.append(sliders["angle"])
            self.length_sliders.append(sliders["length"])
            label = widgets.HTML(f"<b>{html.escape(name)}</b>", layout={"width": "70px"})
            rows.append(widgets.HBox([label, *sliders.values()]))
        self.combiner_dropdown.observe(lambda _: self._redraw(), names="value")
        self.figure_widget = go.FigureWidget()
        self.readout = widgets.HTML()
        self.readout.add_class("mtl-geometry-readout")
        self.widget = widgets.VBox(
            [widgets.HBox([self.combiner_dropdown, self.random_button]), *rows,
             self.figure_widget, self.readout]
        )

    def _on_slider(self, _change) -> None:
        if not self._syncing:
            self._model_gradients = None
            self._redraw()

    # ---- state ----------------------------------------------------------------------------
    @property
    def combiner(self) -> str:
        return self.combiner_dropdown.value

    @property
    def gradients(self) -> np.ndarray:
        """The drawn gradients [K, dim], from the sliders."""
        elevations = [s.value for s in self.elevation_sliders] if self.dim == 3 else None
        return gradients_from_angles(
            [s.value for s in self.angle_sliders], [s.value for s in self.length_sliders],
            elevations,
        )

    @property
    def direction(self) -> np.ndarray:
        """The drawn combined direction [dim]."""
        return self._state()[1]

    def set_gradients(self, gradients: np.ndarray, *, keep_model_gradients: bool = False) -> None:
        """Move the sliders to draw ``gradients`` [K, dim] (rounded to the sliders' steps)."""
        gradients = np.asarray(gradients, dtype=float)
        if gradients.shape != (len(self.task_names), self.dim):
            raise ValueError(f"gradients must be [{len(self.task_names)}, {self.dim}], "
                             f"got {gradients.shape}")
        azimuths, lengths, elevations = angles_from_gradients(gradients)
        self._syncing = True
        try:
            for k in range(len(self.task_names)):
                self.angle_sliders[k].value = float(azimuths[k])
                self.length_sliders[k].value = float(min(lengths[k], MAX_LENGTH))
                if self.dim == 3:
                    self.elevation_sliders[k].value = float(elevations[k])
        finally:
            self._syncing = False
        if not keep_model_gradients:
            self._model_gradients = None
        self._redraw()

    def randomize_conflict(self) -> None:
        """Draw random gradients until at least one pair conflicts (cosine below -0.1)."""
        K = len(self.task_names)
        while True:
            candidate = self._rng.normal(size=(K, self.dim))
            candidate *= (self._rng.uniform(0.5, 2.0, size=K) / np.linalg.norm(candidate, axis=1))[
                :, None
            ]
            if pairwise_cosines(candidate).min() < -0.1:
                break
        self.set_gradients(candidate)

    # ---- drawing --------------------------------------------------------------------------
    def _state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
        """(gradients, d, sum, Gramian, G d, note) as drawn; model gradients when attached."""
        name = self.combiner
        if self._model_gradients is None:
            G = torch.as_tensor(self.gradients)
            d = combined_direction(name, G, self.losses, self.task_names, self.seed)
            total = combined_direction("sum", G, self.losses, self.task_names)
            return (G.numpy(), d.numpy(), total.numpy(), (G @ G.T).numpy(), (G @ d).numpy(), "")
        G, losses, method, scale = self._model_gradients
        d = combined_direction(name, G, losses, self.task_names, self.seed)
        projection = project_onto_span(G, d, method)
        total = project_onto_span(G, G.sum(0), method).direction
        gramian = gramian_of(G).numpy()
        note = (
            f"Model gradients projected onto 3 axes of their span ({method}), scaled by "
            f"{scale:.3g}; {100 * projection.direction_outside:.1f}% of |d| lies outside them."
        )
        return (projection.gradients * scale, projection.direction * scale, total * scale,
                gramian, (G.double() @ d.double()).numpy(), note)

    def figure(self) -> go.Figure:
        """The current view as a static ``go.Figure``."""
        return self._figure_and_readout()[0]

    def _figure_and_readout(self) -> tuple[go.Figure, str]:
        name = self.combiner
        gradients, d, total, gramian, g_dot_d, note = self._state()
        construct = CONSTRUCTIONS.get(name)
        constructions = [] if construct is None else construct(
            gradients, self.task_names, fresh_combiner(name, self.dim, self.task_names, self.seed)
        )
        fig = geometry_figure(gradients, d, combiner_name=name, task_names=self.task_names,
                              reference=total, constructions=constructions)
        return fig, readout_html(gradients, gramian, g_dot_d, d, self.task_names, name, note)

    def _failure(self, error: Exception) -> str:
        return f"{self.combiner} failed: {type(error).__name__}: {error}"

    def _redraw(self) -> None:
        try:
            fig, text = self._figure_and_readout()
        except Exception as error:  # a combiner that fails on these inputs: say so, keep going
            self.readout.value = (f'<div class="mtl-geometry-error">'
                                  f"{html.escape(self._failure(error))}</div>")
            return
        show_figure(self.figure_widget, fig)
        self.readout.value = text

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        try:
            figure = self.figure()
        except Exception as error:  # the message instead of a figure of NaN
            return {**(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}),
                    "text/plain": f"{self!r}: {self._failure(error)}"}
        return live_and_static_mimebundle(figure, self.widget, repr(self), include, exclude)

    def __repr__(self) -> str:
        return (f"GradientGeometry(num_tasks={len(self.task_names)}, dim={self.dim}, "
                f"combiner={self.combiner!r})")
