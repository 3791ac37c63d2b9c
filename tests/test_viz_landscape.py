"""Conflict landscapes: the toy problems' formulas, Jacobians, Pareto sets and trajectories."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from mtl_tutor.combiners import COMBINER_NAMES
from mtl_tutor.viz.landscape import (
    ConflictLandscape,
    jacobians,
    landscape_figure,
    non_dominated,
    pareto_set,
    trajectories,
    trajectory,
)
from mtl_tutor.viz.toy_problems import (
    BOWL_A,
    BOWL_B,
    BOWL_CURVATURE,
    BOWL_SCALE,
    TOY_PROBLEMS,
    ToyProblem,
    bowls_pareto_set,
    cagrad_toy_losses,
)

BOWLS = TOY_PROBLEMS["imbalanced_bowls"]


def losses_along(problem, path: np.ndarray) -> np.ndarray:
    return problem.losses(torch.as_tensor(path.T)).numpy()  # (2, n)


def distance_to_set(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, None] - reference[None], axis=-1).min(axis=1)


def test_cagrad_toy_matches_the_appendix_formulas_at_hand_computed_points():
    np.testing.assert_allclose(cagrad_toy_losses(torch.zeros(2, dtype=torch.float64)), [0, 0])
    c2 = math.tanh(4.0)  # at x = (7, -8): c1 = 0, g1 = -20, g2 = (14^2)/10 - 20 = -0.4
    np.testing.assert_allclose(
        cagrad_toy_losses(torch.tensor([7.0, -8.0], dtype=torch.float64)), [-20 * c2, -0.4 * c2]
    )
    c1 = math.tanh(1.0)  # at x = (-7, 2): f1 = log(|0 - tanh(-2)|) + 6, f2 = log(|5 - tanh 2 + 2|)
    expected = [c1 * (math.log(math.tanh(2.0)) + 6), c1 * (math.log(7 - math.tanh(2.0)) + 6)]
    np.testing.assert_allclose(
        cagrad_toy_losses(torch.tensor([-7.0, 2.0], dtype=torch.float64)), expected
    )


@pytest.mark.parametrize("name", list(TOY_PROBLEMS))
def test_jacobian_rows_match_finite_differences(name):
    points = np.array([[1.3, -2.1], [-4.0, 0.7]])
    losses, J = jacobians(name, points)
    problem = TOY_PROBLEMS[name]
    for n, point in enumerate(points):
        for axis in range(2):
            step = np.zeros(2)
            step[axis] = 1e-6
            up, down = (problem.losses(torch.as_tensor(point + s)).numpy() for s in (step, -step))
            np.testing.assert_allclose(J[n, :, axis], (up - down) / 2e-6, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(losses[n], problem.losses(torch.as_tensor(point)).numpy())


def test_non_dominated_keeps_exactly_the_front():
    first = np.array([1.0, 2.0, 3.0, 2.5, 1.0])
    second = np.array([3.0, 2.0, 1.0, 2.5, 4.0])
    assert non_dominated(first, second).tolist() == [True, True, True, False, False]


def test_grid_pareto_set_of_the_bowls_lies_on_the_exact_curve():
    points, values = pareto_set(BOWLS, resolution=200)
    spacing = 8.0 / 199
    assert len(points) > 20
    distance = distance_to_set(points, bowls_pareto_set(2001))
    assert distance.mean() < 2 * spacing and distance.max() < 5 * spacing  # a band a few cells wide
    assert np.all(np.diff(values[:, 0]) >= 0) and np.all(np.diff(values[:, 1]) <= 0)


def test_summed_gradient_descends_the_sum_to_its_minimiser():
    path = trajectory(BOWLS, "sum", start=(-3.0, 3.0))
    total = losses_along(BOWLS, path).sum(0)
    assert np.all(np.isfinite(path)) and np.all(np.diff(total) <= 1e-12)
    sh = BOWL_SCALE * np.asarray(BOWL_CURVATURE)
    minimiser = (np.asarray(BOWL_A) + sh * np.asarray(BOWL_B)) / (1 + sh)
    np.testing.assert_allclose(path[-1], minimiser, atol=1e-6)


def test_mgda_improves_both_tasks_and_reaches_the_pareto_set():
    paths = trajectories(BOWLS, "mgda")
    for path in paths:
        losses = losses_along(BOWLS, path)
        assert np.all(np.diff(losses, axis=1) <= 1e-9)  # no task ever gets worse
    ends = np.stack([path[-1] for path in paths])
    assert distance_to_set(ends, bowls_pareto_set(20001)).max() < 1e-2


@pytest.mark.parametrize("combiner", ["sum", "pcgrad", "mgda", "cagrad"])
def test_cagrad_toy_paths_stay_finite_and_improve_from_the_lower_starts(combiner):
    starts = [(-7.5, -0.5), (9.0, -1.0)]
    for start, path in zip(starts, trajectories("cagrad_toy", combiner, starts, 150), strict=True):
        np.testing.assert_array_equal(path[0], start)
        assert path.shape == (151, 2) and np.all(np.isfinite(path))
        before, after = cagrad_toy_losses(torch.as_tensor(np.stack([path[0], path[-1]]).T)).T
        assert after.sum() < before.sum()
        assert np.all(np.linalg.norm(np.diff(path, axis=0), axis=1) <= 0.1 + 1e-12)  # capped


@pytest.mark.parametrize("name", ["sum", "mgda", "pcgrad", "uncertainty", "dbmtl"])
def test_a_path_stops_at_its_last_finite_point(name):
    # Past x1 = 2 the second loss is NaN; combiners refuse NaN, so the path just ends there.
    cliff = ToyProblem(
        name="cliff", losses=lambda x: torch.stack([-x[0], torch.sqrt(2.0 - x[0]) + 0 * x[1]]),
        bounds=((-1, 3), (-1, 1)), starts=((0.0, 0.0),), lr=0.5, steps=20, max_step=1.0,
        citation="test",
    )
    (path,) = trajectories(cliff, name)
    assert np.all(np.isfinite(path)) and len(path) < 21 and path[-1, 0] <= 2.0


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="problem"):
        trajectory("nope", "sum", (0.0, 0.0))
    with pytest.raises(ValueError, match="lr"):
        trajectory(BOWLS, "sum", (0.0, 0.0), lr=0.0)
    with pytest.raises(ValueError, match="surface"):
        landscape_figure(BOWLS, {}, surface="product")
    with pytest.raises(ValueError, match="combiners"):
        ConflictLandscape("imbalanced_bowls", combiners=("nope",))


def test_figure_draws_every_path_in_both_panels():
    short = dataclasses.replace(BOWLS, steps=20)
    paths = {name: trajectories(short, name) for name in ("sum", "mgda")}
    fig = landscape_figure(short, paths, surface="task 1")
    drawn = [t for t in fig.data if t.name == "mgda"]
    assert len(drawn) == 2 * len(BOWLS.starts)
    np.testing.assert_allclose(drawn[0].x, paths["mgda"][0][:, 0])
    assert {t.name for t in fig.data} >= {"Pareto set", "Pareto front", "sum", "task 1 loss"}


def test_widget_redraws_when_combiners_change():
    view = ConflictLandscape("imbalanced_bowls", combiners=("sum",))
    view.steps_slider.value = 30
    view.combiner_select.value = ("sum", "pcgrad")
    names = {t.name for t in view.figure_widget.data}
    assert {"sum", "pcgrad"} <= names
    assert all(len(path) == 31 for path in view.trajectories()["pcgrad"])


@pytest.mark.parametrize("name", COMBINER_NAMES)
@pytest.mark.parametrize("problem", list(TOY_PROBLEMS))
def test_every_combiner_draws_finite_paths(name, problem):
    for path in trajectories(problem, name, steps=8):
        assert np.all(np.isfinite(path)) and 1 <= len(path) <= 9


def test_gradattention_runs_its_network_on_one_thread(monkeypatch):
    # Its tiny network on several threads made a default landscape take minutes on a busy CPU.
    from mtl_tutor.combiners.gradattention import GradAttention

    threads, original = [], GradAttention.attention

    def attention(self, tokens):
        threads.append(torch.get_num_threads())
        return original(self, tokens)

    monkeypatch.setattr(GradAttention, "attention", attention)
    before = torch.get_num_threads()
    (path,) = trajectories(BOWLS, "gradattention", starts=[(-3.0, 3.0)], steps=3)
    assert threads == [1, 1, 1] and torch.get_num_threads() == before
    assert path.shape == (4, 2)
