"""Identities between methods, optimality conditions, and a table of hand-derived values."""

import pytest
import torch
from combiner_helpers import fresh, gradient_matrix

from mtl_tutor.combiners import ColumnGroups, get_combiner
from mtl_tutor.combiners.aligned import AlignedMTL
from mtl_tutor.combiners.fairness import fair_weights
from mtl_tutor.combiners.mgda import MGDA

SEEDS = range(8)


def random_G(K, P, seed):
    return gradient_matrix("random", K, P, 1.0, seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_pcgrad_is_twice_upgrad_for_two_tasks(seed):
    # For K = 2, projecting g_i off the conflicting g_j is its projection onto the dual cone;
    # PCGrad sums the two projections, UPGrad averages them.
    G = random_G(2, 6, seed)
    ones = torch.ones(2, dtype=G.dtype)
    assert torch.allclose(fresh("pcgrad", 2, 6)(G, ones), 2 * fresh("upgrad", 2, 6)(G, ones))


@pytest.mark.parametrize("seed", SEEDS)
def test_gradvac_with_zero_targets_is_pcgrad(seed):
    # beta = 0 keeps every target at 0, where the vaccine correction is PCGrad's projection.
    gradvac = fresh("gradvac", 2, 6, beta=0.0)
    pcgrad = fresh("pcgrad", 2, 6)
    for step in range(3):
        G_step = random_G(2, 6, 100 * seed + step)
        assert torch.allclose(gradvac(G_step, torch.ones(2)), pcgrad(G_step, torch.ones(2)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("structure", ["random", "duplicate_row", "zero_row"])
def test_mgda_meets_its_kkt_conditions(seed, structure):
    # w on the simplex; (G G^T w)_k >= w^T G G^T w for all k, with equality where w_k > 0.
    G = gradient_matrix(structure, 4, 6, 1.0, seed)
    gramian = G @ G.T
    w = MGDA().weights(gramian, torch.ones(4))
    assert (w >= 0).all() and torch.isclose(w.sum(), torch.tensor(1.0, dtype=w.dtype))
    slack = gramian @ w - w @ gramian @ w
    assert (slack >= -1e-9).all()
    assert (slack[w > 1e-9].abs() <= 1e-9).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_nashmtl_without_clipping_is_fairgrad_with_alpha_one(seed):
    G = random_G(3, 8, seed)
    ones = torch.ones(3, dtype=G.dtype)
    nash = fresh("nashmtl", 3, 8, max_norm=0.0)(G, ones)
    assert torch.allclose(nash, fresh("fairgrad", 3, 8, alpha=1.0)(G, ones))
    assert torch.isclose(nash.norm(), torch.tensor(3.0, dtype=G.dtype).sqrt())  # ||d||^2 = K
    assert torch.isclose(fresh("nashmtl", 3, 8)(G, ones).norm(), torch.tensor(1.0, dtype=G.dtype))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("structure", ["random", "orthogonal"])
def test_fairgrad_solves_its_equation(alpha, structure):
    G = gradient_matrix(structure, 4, 6, 3.0, 1)
    gramian = G @ G.T
    w = torch.from_numpy(fair_weights(gramian, alpha))
    assert torch.allclose(gramian @ w, w ** (-1 / alpha), rtol=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
def test_cagrad_with_c_zero_is_the_mean(seed):
    G = random_G(3, 8, seed)
    ones = torch.ones(3, dtype=G.dtype)
    assert torch.allclose(fresh("cagrad", 3, 8, c=0.0)(G, ones), G.mean(0))


@pytest.mark.parametrize("seed", SEEDS)
def test_imtl_projects_equally_on_every_unit_gradient_and_config_has_equal_cosines(seed):
    G = random_G(3, 8, seed)
    ones = torch.ones(3, dtype=G.dtype)
    units = G / G.norm(dim=1, keepdim=True)
    projections = units @ fresh("imtl", 3, 8)(G, ones)
    assert torch.allclose(projections, projections.mean().expand(3))
    d = fresh("config", 3, 8)(G, ones)
    cosines = units @ d / d.norm()
    assert torch.allclose(cosines, cosines.mean().expand(3)) and (cosines > 0).all()
    assert torch.isclose(d.norm(), (G @ d / d.norm()).sum())  # length = sum_k <g_k, u>


@pytest.mark.parametrize("seed", SEEDS)
def test_aligned_balances_the_gradient_system(seed):
    # The rows of B G are orthogonal with equal norms sqrt(lambda_min).
    G = random_G(3, 8, seed)
    gramian = G @ G.T
    eigenvalues, V = torch.linalg.eigh(gramian)
    balance = eigenvalues.min().sqrt() * (V / eigenvalues.sqrt()) @ V.T
    aligned = balance @ G
    assert torch.allclose(aligned @ aligned.T, eigenvalues.min() * torch.eye(3, dtype=G.dtype))
    assert torch.allclose(AlignedMTL().weights(gramian, torch.ones(3)), balance.sum(1))


@pytest.mark.parametrize("seed", SEEDS)
def test_gradvac_per_group_with_one_group_is_the_whole_model(seed):
    whole, grouped = fresh("gradvac", 3, 8), fresh("gradvac", 3, 8, per_group=True)
    for step in range(3):
        G_step = random_G(3, 8, 10 * seed + step)
        assert torch.allclose(whole(G_step, torch.ones(3)), grouped(G_step, torch.ones(3)))


def test_gradvac_per_group_treats_groups_independently():
    # Two groups: each block is combined from its own Gramian with its own targets.
    G = random_G(3, 10, 0)
    grouped = get_combiner("gradvac", per_group=True, beta=0.3)
    grouped.on_event(ColumnGroups((("a", slice(0, 4)), ("b", slice(4, 10)))))
    combination = grouped.combine(G, torch.ones(3))
    first, second = get_combiner("gradvac", beta=0.3), get_combiner("gradvac", beta=0.3)
    second.random = first.random  # the grouped combiner draws group a's order, then group b's
    expected = torch.cat([first(G[:, :4], torch.ones(3)), second(G[:, 4:], torch.ones(3))])
    assert torch.allclose(combination.direction, expected)
    assert {group for group, _, _ in grouped.targets} == {"a", "b"}
    assert grouped.target("0", "1", "a") == first.target("0", "1")
    # |d - sum g| from the two blocks' Gramians equals the direct measurement
    total = G.sum(0)
    assert combination.change == pytest.approx(float((expected - total).norm() / total.norm()))


def test_gradvac_without_column_groups_is_one_group():
    G = random_G(3, 8, 1)
    grouped, whole = get_combiner("gradvac", per_group=True), get_combiner("gradvac")
    assert torch.allclose(grouped(G, torch.ones(3)), whole(G, torch.ones(3)))


# Hand-derived directions for G = [[1, 0], [-1, 1]] (the two gradients conflict: <g1, g2> = -1).
#   pcgrad:  g1 - (-1/2) g2 = (0.5, 0.5);  g2 - (-1/1) g1 = (0, 1);  sum = (0.5, 1.5)
#   upgrad:  half of PCGrad (two tasks)
#   mgda:    min over w of ||(2w - 1, 1 - w)||^2 -> w = 0.6 -> (0.2, 0.4)
#   imtl:    G G^T = [[1, -1], [-1, 2]], n = (1, sqrt 2):
#            w = (2 + sqrt 2, 1 + sqrt 2) / (3 + 2 sqrt 2)
#   config:  unit rows u1 = (1, 0), u2 = (-1, 1)/sqrt 2; u with equal cosines is along
#            (1, 1 + sqrt 2); d = (u . g1 + u . g2) u
#   nashmtl: w1 - w2 = 1/w1 and 2 w2 - w1 = 1/w2 give w1 = sqrt(2 + sqrt 2), w2 = w1 / sqrt 2;
#            d = (w1 - w2, w2) has norm sqrt(K) = sqrt 2 and is clipped to norm 1
#   sum:     (0, 1)
SQRT2 = 2**0.5
_u = torch.tensor([1.0, 1.0 + SQRT2], dtype=torch.float64)
_u = _u / _u.norm()
_w1 = (2 + SQRT2) ** 0.5
_imtl = torch.tensor([2 + SQRT2, 1 + SQRT2], dtype=torch.float64) / (3 + 2 * SQRT2)
PINNED = {
    "sum": [0.0, 1.0],
    "pcgrad": [0.5, 1.5],
    "upgrad": [0.25, 0.75],
    "mgda": [0.2, 0.4],
    "imtl": (_imtl @ torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)).tolist(),
    "config": ((_u @ torch.tensor([[1.0, -1.0], [0.0, 1.0]], dtype=torch.float64)).sum() * _u)
    .tolist(),
    "nashmtl": [(_w1 - _w1 / SQRT2) / SQRT2, _w1 / SQRT2 / SQRT2],
}


@pytest.mark.parametrize(("name", "expected"), sorted(PINNED.items()))
def test_pinned_values(name, expected):
    G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    d = fresh(name, 2, 2)(G, torch.ones(2, dtype=G.dtype))
    assert torch.allclose(d, torch.tensor(expected, dtype=G.dtype), atol=1e-10)
