"""Property checks over every combiner in COMBINER_NAMES (hypothesis).

Matrices range over zero rows, duplicate and opposite rows, orthogonal rows, K = 1, and
scales from 1e-15 to 1e15, in float32 and float64.
"""

import pytest
import torch
from combiner_helpers import fresh, gradient_matrix
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mtl_tutor.combiners import COMBINER_NAMES, EpochEnd, LossesAfterStep, get_combiner

STRUCTURES = ["random", "zero_row", "duplicate_row", "opposite", "orthogonal", "all_zero"]
# derandomize: every run checks the same examples, so a CI failure reproduces on any machine
QUICK = settings(max_examples=15, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])


@st.composite
def matrices(draw, structures=STRUCTURES, min_K=1, dtypes=(torch.float32, torch.float64)):
    K = draw(st.integers(min_K, 5))
    P = draw(st.integers(max(K, 1), 12))
    structure = draw(st.sampled_from(structures))
    scale = 10.0 ** draw(st.integers(-15, 15))
    dtype = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2**16))
    return gradient_matrix(structure, K, P, scale, seed, dtype)


def losses_for(G, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(G.shape[0], generator=generator, dtype=torch.float64) + 0.5).to(G.dtype)


@pytest.mark.parametrize("name", COMBINER_NAMES)
@QUICK
@given(G=matrices())
def test_output_is_finite_with_the_right_shape_and_dtype(name, G):
    K, P = G.shape
    combiner = fresh(name, K, P)
    for _ in range(2):  # the second call exercises any state the first one left
        d = combiner(G, losses_for(G))
        assert d.shape == (P,) and d.dtype == G.dtype
        assert torch.isfinite(d).all()


NON_CONFLICTING = ["mgda", "upgrad", "nashmtl", "fairgrad"]


@pytest.mark.parametrize("name", NON_CONFLICTING)
@QUICK
@given(G=matrices(dtypes=(torch.float64,)))
@example(G=torch.tensor([[1.5410, -0.2934], [-1.5410, 0.2934]], dtype=torch.float64))  # g, -g
def test_methods_that_promise_it_never_conflict_with_a_task(name, G):
    d = fresh(name, *G.shape)(G, losses_for(G))
    assert_no_conflict(G, d)


@QUICK
@given(G=matrices(dtypes=(torch.float64,), structures=["random", "orthogonal"], min_K=2))
def test_pcgrad_with_two_tasks_and_config_on_independent_rows_never_conflict(G):
    assert_no_conflict(G[:2], fresh("pcgrad", 2, G.shape[1])(G[:2], torch.ones(2)))
    if torch.linalg.matrix_rank(G) == G.shape[0]:
        assert_no_conflict(G, fresh("config", *G.shape)(G, losses_for(G)))


def assert_no_conflict(G, d, tol=1e-7):
    """<g_k, d> >= 0 up to ``tol`` relative to ||g_k|| ||d||. A d of norm below 1e-8 of the
    largest gradient's is zero up to a solver's tolerance (e.g. for G = [g, -g]): it moves no
    task, so it conflicts with none."""
    norms = G.norm(dim=1)
    if d.norm() <= 1e-8 * norms.max():
        return
    inner = G @ d
    assert (inner >= -tol * norms * d.norm()).all(), inner


HOMOGENEOUS = [n for n in COMBINER_NAMES if n not in ("nashmtl", "fairgrad")]


@pytest.mark.parametrize("name", HOMOGENEOUS)
@QUICK
@given(G=matrices(dtypes=(torch.float64,)), factor=st.sampled_from([1e-3, 0.37, 7.5, 1e4]))
def test_positive_homogeneity(name, G, factor):
    # A fresh combiner with the same seed: d(t G) = t d(G) for t > 0.
    losses = losses_for(G)
    d = fresh(name, *G.shape)(G, losses)
    scaled = fresh(name, *G.shape)(factor * G, losses)
    assert torch.allclose(scaled, factor * d, rtol=1e-5, atol=1e-12 * factor * G.abs().max())


@QUICK
@given(G=matrices(dtypes=(torch.float64,), structures=["random", "orthogonal"]),
       factor=st.sampled_from([1e-3, 7.5, 1e4]), alpha=st.sampled_from([0.5, 1.0, 2.0, 4.0]))
def test_nash_is_scale_invariant_and_fairgrad_scales_as_a_power(G, factor, alpha):
    nash = fresh("nashmtl", *G.shape, max_norm=0.0)
    assert torch.allclose(nash(factor * G, losses_for(G)), nash(G, losses_for(G)), rtol=1e-6)
    fair = fresh("fairgrad", *G.shape, alpha=alpha)
    power = factor ** ((1 - alpha) / (1 + alpha))
    assert torch.allclose(fair(factor * G, losses_for(G)), power * fair(G, losses_for(G)),
                          rtol=1e-6, atol=1e-9 * power * G.abs().max())


@pytest.mark.parametrize("name", COMBINER_NAMES)
@QUICK
@given(G=matrices(dtypes=(torch.float64,), structures=["random", "zero_row", "orthogonal"]),
       seed=st.integers(0, 100), declared=st.booleans())
def test_permuting_rows_with_their_names_permutes_nothing_else(name, G, seed, declared):
    # Two twins, several consecutive steps with state: one gets the rows in a fixed order, the
    # other permuted with their names (and, where the method handles it, a random subset of the
    # tasks at each step). Directions agree to round-off, weights and altered flags permute.
    K, P = G.shape
    names = [f"t{k}" for k in range(K)]
    twins = [fresh(name, K, P, tasks=names if declared else None) for _ in range(2)]
    generator = torch.Generator().manual_seed(seed)
    for t in range(4):
        G_t = G * (1 + torch.rand(K, 1, generator=generator, dtype=G.dtype))
        losses = losses_for(G, seed + t)
        rows = list(range(K))
        if twins[0].needs_every_task is None and t % 2:
            rows = sorted(torch.randperm(K, generator=generator)[:max(1, K - 1)].tolist())
        shuffled = [rows[i] for i in torch.randperm(len(rows), generator=generator)]
        results = [twin.combine(G_t[r], losses[r], [names[i] for i in r])
                   for twin, r in zip(twins, (rows, shuffled))]
        position = [rows.index(i) for i in shuffled]  # row of each shuffled task in the first
        first, second = results
        scale = G_t[rows].abs().sum(0).norm() * (1 if first.weights is None else
                                                 max(1.0, float(first.weights.abs().max())))
        # Round-off: a permuted copy of G changes the Gramian's dot products in the last bits
        # (memory alignment), which a solver may amplify by its conditioning.
        assert (second.direction - first.direction).norm() <= 1e-9 * scale + 1e-300
        if first.weights is not None:
            largest = float(first.weights.abs().max())
            assert torch.allclose(second.weights, first.weights[position], rtol=1e-9,
                                  atol=1e-9 * largest)
        if first.altered is not None:
            assert torch.equal(second.altered, first.altered[position])
        for twin in twins:  # the events carry names: both twins see the same
            twin.on_event(EpochEnd(t, {names[i]: float(losses[i]) for i in rows}))
            twin.on_event(LossesAfterStep({names[i]: 0.9 * float(losses[i]) for i in rows}))


@pytest.mark.parametrize("name", [n for n in COMBINER_NAMES
                                  if get_combiner(n).needs_every_task is not None])
def test_methods_that_need_every_task_refuse_a_step_without_one(name):
    combiner = get_combiner(name, tasks=["a", "b", "c"])
    G = gradient_matrix("random", 3, 6, 1.0, 0)
    combiner(G, torch.ones(3, dtype=G.dtype))
    with pytest.raises(ValueError, match="needs every task in every step"):
        combiner(G[:2], torch.ones(2, dtype=G.dtype), ["a", "b"])


@QUICK
@given(G=matrices(dtypes=(torch.float64,), structures=["random", "orthogonal"]))
def test_reductions_to_the_sum_when_no_gradients_conflict(G):
    # Non-negative entries: every pairwise inner product is >= 0.
    G = G.abs()
    K, P = G.shape
    ones = torch.ones(K, dtype=G.dtype)
    assert torch.allclose(fresh("pcgrad", K, P)(G, ones), G.sum(0))
    assert torch.allclose(fresh("gradvac", K, P)(G, ones), G.sum(0))  # targets start at 0
    assert torch.allclose(fresh("upgrad", K, P)(G, ones), G.mean(0))  # UPGrad averages
