"""Numerics every combiner shares: half-precision gradients, non-finite inputs, bad options."""

import math

import pytest
import torch
from combiner_helpers import fresh, gradient_matrix

from mtl_tutor.combiners import COMBINER_NAMES, get_combiner
from mtl_tutor.combiners.base import gramian_of

TASKS = ["sst", "quora", "sts"]


def large_half_gradients():
    """float16 rows whose squared norms (about 4e6) overflow float16's 65504."""
    G = gradient_matrix("random", 3, 4000, 30.0, 0)
    G[1] = 0.3 * G[1] - G[0]  # a conflict
    return G.half()


def test_the_gramian_of_half_precision_rows_is_accumulated_in_float32_or_better():
    G = large_half_gradients()
    exact = G.double() @ G.double().T
    assert exact.diagonal().min() > 65504
    gramian = gramian_of(G)
    assert gramian.dtype == torch.float64
    assert torch.allclose(gramian, exact, rtol=1e-5)


@pytest.mark.parametrize("name", COMBINER_NAMES)
def test_half_precision_gradients_give_the_double_precision_direction(name):
    G = large_half_gradients()
    losses = torch.tensor([0.7, 1.2, 0.9])
    d = fresh(name, 3, G.shape[1])(G, losses.half())
    assert d.dtype == torch.float16 and torch.isfinite(d).all()
    if name == "graddrop":  # its random thresholds are drawn in G's dtype
        return
    reference = fresh(name, 3, G.shape[1])(G.double(), losses.double())
    assert (d.double() - reference).norm() <= 2e-3 * reference.norm() + 1e-3


def corrupt(G, row, value):
    G = G.clone()
    G[row, 5] = value
    return G


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", COMBINER_NAMES)
def test_a_non_finite_gradient_is_refused_naming_the_task_before_any_state_changes(name, value):
    G = gradient_matrix("random", 3, 12, 1.0, 0)
    combiner = fresh(name, 3, 12, tasks=TASKS)
    combiner(G, torch.ones(3, dtype=G.dtype))  # some state to keep
    before = {k: v.clone() for k, v in combiner.state_dict().items()}
    with pytest.raises(ValueError, match="gradient of task 'quora'"):
        combiner(corrupt(G, 1, value), torch.ones(3, dtype=G.dtype))
    after = combiner.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("name", COMBINER_NAMES)
def test_a_non_finite_loss_is_refused_naming_the_task(name, value):
    G = gradient_matrix("random", 3, 12, 1.0, 0)
    losses = torch.tensor([1.0, 1.0, value], dtype=G.dtype)
    combiner = fresh(name, 3, 12, tasks=TASKS)
    with pytest.raises(ValueError, match="loss of task 'sts'"):
        combiner(G, losses)
    if not combiner.needs_gradients:
        with pytest.raises(ValueError, match="loss of task 'sts'"):
            combiner.loss_weights(losses)


# Each real-valued option with values it must refuse (NaN and infinities everywhere).
BAD_OPTIONS = [
    ("cagrad", "c", -0.1), ("cagrad", "rescale", 1.0), ("cagrad", "rescale", True),
    ("gradvac", "beta", 1.5), ("gradvac", "initial_target", 1.0),
    ("gradvac", "target_update", "sometimes"), ("gradvac", "per_group", 1),
    ("dwa", "temperature", 0.0), ("famo", "lr", 0.0), ("famo", "gamma", -1.0),
    ("gradnorm", "alpha", -1.0), ("gradnorm", "lr", 0.0), ("dbmtl", "beta", 2.0),
    ("dbmtl", "beta_sigma", -0.5), ("fairgrad", "alpha", 0.0), ("nashmtl", "max_norm", -1.0),
    ("nashmtl", "update_weights_every", 0), ("gradattention", "lr", 0.0),
    ("gradattention", "temperature", -1.0), ("gradattention", "subset_size", 0),
    ("gradattention", "mode", "subset"), ("aligned", "scale_mode", "max"),
    ("uncertainty", "kinds", "ranking"),
]
REAL_OPTIONS = [("cagrad", "c"), ("gradvac", "beta"), ("gradvac", "initial_target"),
                ("dwa", "temperature"), ("famo", "lr"), ("famo", "gamma"),
                ("gradnorm", "alpha"), ("gradnorm", "lr"), ("dbmtl", "beta"),
                ("dbmtl", "beta_sigma"), ("fairgrad", "alpha"), ("nashmtl", "max_norm"),
                ("gradattention", "lr"), ("gradattention", "temperature")]


@pytest.mark.parametrize(("name", "option", "value"), BAD_OPTIONS + [
    (name, option, value) for name, option in REAL_OPTIONS
    for value in (math.nan, math.inf, -math.inf)])
def test_bad_options_are_refused_naming_the_option(name, option, value):
    with pytest.raises(ValueError, match=option):
        get_combiner(name, **{option: value})
