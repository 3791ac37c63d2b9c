"""GradVac's two target rules (the paper's and the reports' fork) on known gradient sequences."""

import math

import pytest
import torch

from mtl_tutor.combiners import get_combiner


def pair_with_cosine(cosine: float, length: float = 1.0) -> torch.Tensor:
    """Two gradients in the plane with the given cosine: g_1 = e_1, g_2 at angle acos(cosine)."""
    angle = math.acos(cosine)
    return torch.tensor([[1.0, 0.0], [length * math.cos(angle), length * math.sin(angle)]],
                        dtype=torch.float64)


def fluctuating_cosines(steps=200, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (0.05 + 0.3 * torch.rand(steps, generator=generator, dtype=torch.float64)).tolist()


def interventions(target_update):
    gradvac = get_combiner("gradvac", seed=0, target_update=target_update)
    counts = {"steps": 0, "gradients": 0}
    for cosine in fluctuating_cosines():
        G = pair_with_cosine(cosine)
        combination = gradvac.combine(G, torch.ones(2, dtype=G.dtype))
        altered = combination.altered
        counts["steps"] += bool(altered.any())  # a step with an intervention
        counts["gradients"] += int(altered.sum())  # the reports' unit: altered task gradients
        if not altered.any():
            assert torch.equal(combination.direction, G.sum(0))
    return counts, gradvac


def test_on_intervention_targets_never_alter_agreeing_gradients_while_the_papers_do():
    # Cosines between 0.05 and 0.35: the fork's targets stay at 0 (it never intervenes, so they
    # never move); the paper's EMA climbs towards the mean cosine and then corrects every pair
    # whose cosine dips below it.
    fork, fork_gradvac = interventions("on-intervention")
    paper, paper_gradvac = interventions("always")
    assert fork == {"steps": 0, "gradients": 0}
    assert fork_gradvac.target("0", "1") == 0.0
    assert paper["steps"] > 0 and paper["gradients"] >= paper["steps"]
    assert 0.05 < paper_gradvac.target("0", "1") < 0.35


def test_the_targets_follow_eq_4_on_every_visit_or_only_on_interventions():
    # One pair, a known cosine sequence; phi is measured before the correction, each task's
    # gradient against the other's original, each with its own target. Both targets start at 0;
    # beta = 0.5.
    beta = 0.5
    cosines = [0.3, -0.2, 0.1, 0.4, -0.5, 0.2]
    for rule in ("always", "on-intervention"):
        gradvac = get_combiner("gradvac", beta=beta, target_update=rule)
        expected = {("0", "1"): 0.0, ("1", "0"): 0.0}
        for cosine in cosines:
            G = pair_with_cosine(cosine, length=2.0)
            altered = gradvac.combine(G, torch.ones(2, dtype=G.dtype)).altered.tolist()
            for i, j in expected:
                intervened = cosine < expected[i, j]
                assert altered[int(i)] == intervened, (rule, cosine, i)
                if intervened or rule == "always":
                    expected[i, j] = (1 - beta) * expected[i, j] + beta * cosine
                assert gradvac.target(i, j) == pytest.approx(expected[i, j], abs=1e-12)
        if rule == "on-intervention":  # moved only by the conflicts, so never above 0
            assert all(value <= 0 for value in expected.values())


def test_a_correction_sets_the_cosine_to_the_target():
    # Eq. 3: after the correction, cos(g_i^GV, g_j) equals phi_hat exactly.
    gradvac = get_combiner("gradvac", initial_target=0.6, beta=0.0)
    G = pair_with_cosine(0.1, length=3.0)
    C = gradvac.corrections(G @ G.T, ("a", "b"))
    for i, j in ((0, 1), (1, 0)):
        corrected = C[i] @ G
        cosine = corrected @ G[j] / (corrected.norm() * G[j].norm())
        assert float(cosine) == pytest.approx(0.6, abs=1e-12)


def test_per_layer_targets_are_kept_per_layer_group():
    from mtl_tutor.combiners import ColumnGroups

    gradvac = get_combiner("gradvac", per_group=True, target_update="always", beta=0.5)
    gradvac.on_event(ColumnGroups((("layer.0", slice(0, 2)), ("layer.1", slice(2, 4)))))
    G = torch.cat([pair_with_cosine(0.2), pair_with_cosine(-0.4)], dim=1)
    gradvac(G, torch.ones(2, dtype=G.dtype))
    assert gradvac.target("0", "1", "layer.0") == pytest.approx(0.5 * 0.2)
    assert gradvac.target("0", "1", "layer.1") == pytest.approx(0.5 * -0.4)
