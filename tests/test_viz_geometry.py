"""Gradient geometry: arrow coordinates, constructions, span projection and the widget's state."""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from mtl_tutor.combiners import COMBINER_NAMES, ColumnGroups, Combination, get_combiner
from mtl_tutor.viz import GradientGeometry, combiner_figure, geometry_figure, project_onto_span
from mtl_tutor.viz.arrows import arrow_tip
from mtl_tutor.viz.constructions import (
    cagrad_ball,
    hull_traces,
    pcgrad_projections,
)
from mtl_tutor.viz.geometry_figure import (
    angles_from_gradients,
    gradients_from_angles,
    pairwise_cosines,
)


def shaft(fig: go.Figure, name: str):
    (trace,) = [t for t in fig.data if t.name == name]
    return trace


def expected_direction(name: str, gradients: np.ndarray) -> np.ndarray:
    G = torch.as_tensor(gradients)
    combine = get_combiner(name, seed=0)
    combine.on_event(ColumnGroups((("all", slice(0, G.shape[1])),)))
    return combine(G, torch.ones(G.shape[0], dtype=G.dtype)).detach().numpy()


CONFLICT_2D = gradients_from_angles([0, 135, -110], [1.0, 1.4, 0.8])
CONFLICT_3D = gradients_from_angles([0, 135, -110], [1.0, 1.4, 0.8], [20, -10, 35])


@pytest.mark.parametrize("elevations", [None, [10.0, -45.0, 80.0]])
def test_angles_round_trip(elevations):
    gradients = gradients_from_angles([30.0, -120.0, 179.0], [0.5, 1.0, 2.0], elevations)
    azimuths, lengths, back = angles_from_gradients(gradients)
    np.testing.assert_allclose(azimuths, [30.0, -120.0, 179.0])
    np.testing.assert_allclose(lengths, [0.5, 1.0, 2.0])
    if elevations is not None:
        np.testing.assert_allclose(back, elevations)


def test_pairwise_cosines_of_orthogonal_and_opposite():
    cosines = pairwise_cosines(np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]))
    np.testing.assert_allclose(cosines, [[1, 0, -1], [0, 1, 0], [-1, 0, 1]], atol=1e-12)


@pytest.mark.parametrize("gradients", [CONFLICT_2D, CONFLICT_3D])
def test_figure_draws_each_vector_from_the_origin(gradients):
    d = np.full(gradients.shape[1], 0.3)
    fig = geometry_figure(gradients, d, combiner_name="x", reference=gradients.sum(0))
    for k, name in enumerate(["sst", "quora", "sts"]):
        np.testing.assert_allclose(arrow_tip(shaft(fig, name)), gradients[k])
        assert shaft(fig, name).x[0] == 0
    np.testing.assert_allclose(arrow_tip(shaft(fig, "d (x)")), d)
    np.testing.assert_allclose(arrow_tip(shaft(fig, "sum")), gradients.sum(0))
    if gradients.shape[1] == 3:  # each shaft ends in a cone whose tip is the arrow's tip
        cones = [t for t in fig.data if isinstance(t, go.Cone)]
        assert len(cones) == 5 and {c.anchor for c in cones} == {"tip"}
        np.testing.assert_allclose([cones[0].x[0], cones[0].y[0], cones[0].z[0]], gradients[0])


def test_figure_rejects_bad_shapes():
    with pytest.raises(ValueError, match="gradients"):
        geometry_figure(np.ones((5, 2)), np.ones(2), combiner_name="sum")


@pytest.mark.parametrize("name", COMBINER_NAMES)
@pytest.mark.parametrize("gradients", [CONFLICT_2D, CONFLICT_3D])
def test_drawn_direction_is_what_get_combiner_returns(name, gradients):
    fig = combiner_figure(gradients, name)
    np.testing.assert_allclose(
        arrow_tip(shaft(fig, f"d ({name})")), expected_direction(name, gradients), atol=1e-9
    )


def test_pcgrad_projections_are_orthogonal_and_sum_to_pcgrad_for_two_tasks():
    gradients = gradients_from_angles([0, 150], [1.0, 2.0])
    projections = pcgrad_projections(gradients)
    assert [(i, j) for i, j, _ in projections] == [(0, 1), (1, 0)]
    for i, j, projected in projections:
        assert abs(projected @ gradients[j]) < 1e-12
        assert projected @ gradients[i] > 0
    total = sum(projected for _, _, projected in projections)
    np.testing.assert_allclose(total, expected_direction("pcgrad", gradients), atol=1e-12)


def test_no_projection_without_conflict():
    assert pcgrad_projections(gradients_from_angles([0, 60, 30], [1, 1, 1])) == []


def test_cagrad_ball_is_centred_on_the_average_gradient():
    center, radius = cagrad_ball(CONFLICT_2D, 0.4)
    np.testing.assert_allclose(center, CONFLICT_2D.mean(0))
    assert radius == pytest.approx(0.4 * np.linalg.norm(CONFLICT_2D.mean(0)))


def test_hull_outline_passes_through_every_tip_of_a_triangle():
    (outline,) = hull_traces(CONFLICT_2D, ["a", "b", "c"], None)
    drawn = {(round(x, 9), round(y, 9)) for x, y in zip(outline.x, outline.y, strict=True)}
    assert drawn == {(round(x, 9), round(y, 9)) for x, y in CONFLICT_2D}


@pytest.mark.parametrize("method", ["qr", "pca"])
@pytest.mark.parametrize("K", [2, 3, 4])
def test_span_projection_keeps_inner_products(method, K):
    torch.manual_seed(K)
    G = torch.randn(K, 200, dtype=torch.float64)
    d = torch.randn(200, dtype=torch.float64)
    projection = project_onto_span(G, d, method)
    Q, _ = torch.linalg.qr(G.T)  # explicit basis of the whole span, for reference
    if K <= 3:  # the 3 axes hold the whole span: the Gramian and G d are unchanged
        coords = projection.gradients
        np.testing.assert_allclose(coords @ coords.T, (G @ G.T).numpy(), atol=1e-9)
        np.testing.assert_allclose(coords @ projection.direction, (G @ d).numpy(), atol=1e-9)
        np.testing.assert_allclose(projection.gradient_outside, 0, atol=1e-6)
        inside = float(torch.linalg.norm(Q.T @ d) / torch.linalg.norm(d))
        assert projection.direction_outside == pytest.approx(np.sqrt(1 - inside**2), abs=1e-9)
    else:
        assert projection.gradient_outside.max() > 0.05  # a 4-D span does not fit in 3 axes
    if method == "qr":  # the first gradient lies on the first axis
        np.testing.assert_allclose(projection.gradients[0, 1:], 0, atol=1e-9)


def test_direction_in_the_span_has_nothing_outside():
    G = torch.randn(3, 100, dtype=torch.float64)
    projection = project_onto_span(G, G.sum(0))
    assert projection.direction_outside == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="method"):
        project_onto_span(G, G.sum(0), "svd")


def test_widget_follows_dropdown_and_sliders():
    view = GradientGeometry(num_tasks=3, dim=2, combiner="sum")
    np.testing.assert_allclose(view.gradients, CONFLICT_2D)
    view.combiner_dropdown.value = "pcgrad"
    drawn = arrow_tip(shaft(view.figure_widget, "d (pcgrad)"))
    np.testing.assert_allclose(drawn, expected_direction("pcgrad", CONFLICT_2D), atol=1e-9)
    view.angle_sliders[1].value = 100.0
    moved = gradients_from_angles([0, 100, -110], [1.0, 1.4, 0.8])
    drawn = arrow_tip(shaft(view.figure_widget, "d (pcgrad)"))
    np.testing.assert_allclose(drawn, expected_direction("pcgrad", moved), atol=1e-9)
    assert 'class="mtl-combined-direction"' in view.readout.value


def test_readout_marks_negative_inner_products_red():
    view = GradientGeometry(num_tasks=2, dim=2, combiner="sum")
    view.set_gradients(np.array([[1.0, 0.0], [-2.0, 0.1]]))  # sum points against sst
    assert view.readout.value.count("color:#d62728") >= 2  # cosine and <g_sst, d> both negative


def test_random_conflict_makes_a_conflicting_pair():
    view = GradientGeometry(num_tasks=4, dim=3, combiner="sum", seed=3)
    for _ in range(3):
        view.randomize_conflict()
        assert pairwise_cosines(view.gradients).min() < -0.1


def test_model_gradients_are_projected_and_combined_in_full():
    torch.manual_seed(0)
    G = torch.randn(3, 500, dtype=torch.float64)
    view = GradientGeometry.from_gradients(G, combiner="pcgrad")
    full = expected_direction("pcgrad", G.numpy())
    np.testing.assert_allclose(view.gradients @ view.gradients.T,  # same shape, scaled
                               (G @ G.T).numpy() * view._model_gradients[3] ** 2, atol=1e-6)
    scale = view._model_gradients[3]
    assert np.linalg.norm(view.direction) == pytest.approx(scale * np.linalg.norm(full), rel=1e-9)
    assert "lies outside them" in view.readout.value
    view.length_sliders[0].value = 0.5  # moving a slider leaves the model's gradients
    assert view._model_gradients is None and "outside" not in view.readout.value


def test_saved_notebook_gets_a_static_figure():
    bundle = GradientGeometry(num_tasks=2)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "image/png" in bundle or "text/html" in bundle
    assert bundle["text/plain"].startswith("GradientGeometry(")


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [({"num_tasks": 5}, "num_tasks"), ({"dim": 4}, "dim"), ({"combiner": "nope"}, "combiner"),
     ({"task_names": ["a"]}, "task_names"), ({"losses": [1.0]}, "losses")],
)
def test_constructor_errors_name_the_parameter(kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        GradientGeometry(**kwargs)


@pytest.mark.parametrize("name", COMBINER_NAMES)
@pytest.mark.parametrize(("num_tasks", "dim"), [(2, 2), (3, 2), (4, 3)])
def test_every_combiner_draws_with_two_three_and_four_tasks(name, num_tasks, dim):
    view = GradientGeometry(num_tasks=num_tasks, dim=dim, combiner=name)
    assert "mtl-geometry-error" not in view.readout.value
    drawn = arrow_tip(shaft(view.figure_widget, f"d ({name})"))
    np.testing.assert_allclose(drawn, expected_direction(name, view.gradients), atol=1e-9)
    figure = combiner_figure(view.gradients, name)
    np.testing.assert_allclose(arrow_tip(shaft(figure, f"d ({name})")), drawn, atol=1e-9)


def test_model_gradients_with_nan_are_refused_naming_the_task():
    G = torch.randn(3, 50, dtype=torch.float64)
    G[2, 7] = float("nan")
    with pytest.raises(ValueError, match="task 'sts'.*NaN"):
        GradientGeometry.from_gradients(G)


def test_a_failing_combiner_shows_a_message_instead_of_a_figure(monkeypatch):
    view = GradientGeometry(num_tasks=2, dim=2, combiner="sum")
    monkeypatch.setattr("mtl_tutor.combiners.pcgrad.PCGrad.direction",
                        lambda self, G, *rest: Combination(torch.full_like(G[0], float("nan"))))
    view.combiner_dropdown.value = "pcgrad"  # a combiner that returns NaN
    assert "mtl-geometry-error" in view.readout.value and "not finite" in view.readout.value
    assert "not finite" in view._repr_mimebundle_()["text/plain"]
