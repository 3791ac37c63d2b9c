"""Our directions against torchjd's aggregators on random G (fixed seeds).

torchjd's ``Aggregator`` maps a Jacobian [K, P] to a vector, drawing its random choices from
the global torch RNG; ours draw from their own generator seeded with ``seed``. Seeding the
global RNG with the same seed makes the draws identical when both make the same calls in the
same order, which is what makes the PCGrad, GradVac, GradDrop and RLW comparisons exact.
Scaling conventions that differ are noted at each test. LibMTL (the other reference) cannot be
imported with our torch (its package imports torchvision), so DWA and the loss weightings are
checked against re-derivations in test_combiners_learned.py instead.
"""

import warnings

import numpy as np
import pytest
import torch
from torchjd import aggregation as tjd
from torchjd.linalg import QuadprogProjector

from mtl_tutor.combiners import get_combiner
from mtl_tutor.combiners.cagrad import CAGrad

SHAPES = [(2, 7), (3, 100), (4, 1000), (5, 10_000)]
CASES = [(K, P, seed) for K, P in SHAPES for seed in (0, 1)]


def random_gradients(K, P, seed, dtype=torch.float64):
    """Gradients with real conflicts: a shared component plus larger task-specific noise."""
    generator = torch.Generator().manual_seed(seed)
    shared = torch.randn(1, P, generator=generator, dtype=dtype)
    return shared + 2 * torch.randn(K, P, generator=generator, dtype=dtype)


def assert_close(ours, theirs, rtol=1e-5):
    error, scale = float((ours - theirs).norm()), float(theirs.norm())
    assert error <= rtol * scale + 1e-12, (error, scale)


def ours(name, G, **options):
    return get_combiner(name, **options)(G, torch.ones(G.shape[0], dtype=G.dtype))


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
def test_pcgrad_matches_torchjd(K, P, seed):
    # Same draws: one torch.randperm(K) per task i, in order. Both sum the projected rows.
    G = random_gradients(K, P, seed)
    mine = ours("pcgrad", G, seed=seed)
    torch.manual_seed(seed)
    assert_close(mine, tjd.PCGrad()(G))


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
def test_gradvac_matches_torchjd_over_several_steps(K, P, seed):
    # Same draws (randperm(K - 1) per task) and the same EMA; beta = 0.5 exercises the targets.
    combiner, reference = get_combiner("gradvac", seed=seed, beta=0.5), tjd.GradVac(beta=0.5)
    for step in range(3):
        G = random_gradients(K, P, 10 * seed + step)
        torch.manual_seed(step)
        combiner.random.cpu.manual_seed(step)
        assert_close(combiner(G, torch.ones(K)), reference(G))


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
def test_graddrop_matches_torchjd(K, P, seed):
    # Same uniform thresholds U: torch.rand(P) in G's dtype from the same seed.
    G = random_gradients(K, P, seed)
    mine = ours("graddrop", G, seed=seed)
    torch.manual_seed(seed)
    assert_close(mine, tjd.GradDrop()(G), rtol=1e-12)


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
def test_rlw_matches_torchjd_random(K, P, seed):
    # torchjd draws randn(K) in G's dtype; ours draws float32, so compare on float32 gradients.
    G = random_gradients(K, P, seed, dtype=torch.float32)
    mine = ours("rlw", G, seed=seed)
    torch.manual_seed(seed)
    assert_close(mine, tjd.Random()(G), rtol=1e-6)


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
def test_upgrad_matches_torchjd(K, P, seed):
    # torchjd regularises the Gramian (reg_eps = 1e-4) by default; without it both are exact.
    G = random_gradients(K, P, seed)
    projector = QuadprogProjector(norm_eps=0.0, reg_eps=0.0)
    assert_close(ours("upgrad", G), tjd.UPGrad(projector=projector)(G))


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
def test_mgda_matches_torchjd_frank_wolfe(K, P, seed):
    # torchjd runs Frank-Wolfe (Algorithm 2); with a tiny epsilon it converges to our exact point.
    G = random_gradients(K, P, seed)
    assert_close(ours("mgda", G), tjd.MGDA(epsilon=1e-12, max_iters=20_000)(G), rtol=1e-6)


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
def test_imtl_matches_torchjd(K, P, seed):
    G = random_gradients(K, P, seed)
    assert_close(ours("imtl", G), tjd.IMTLG()(G))


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
def test_aligned_is_k_times_torchjd(K, P, seed):
    # We sum the aligned gradients (LibMTL's convention); torchjd averages them.
    G = random_gradients(K, P, seed)
    assert_close(ours("aligned", G), K * tjd.AlignedMTL()(G))


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
def test_config_matches_torchjd(K, P, seed):
    G = random_gradients(K, P, seed)
    assert_close(ours("config", G), tjd.ConFIG()(G))


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_fairgrad_matches_torchjd(K, P, seed, alpha):
    # torchjd runs scipy's least_squares; our Newton solve agrees to its tolerance.
    G = random_gradients(K, P, seed)
    assert_close(ours("fairgrad", G, alpha=alpha), tjd.FairGrad(alpha=alpha)(G), rtol=1e-6)


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
def test_nashmtl_matches_torchjd(K, P, seed):
    # torchjd (like the official code) stops its convex-concave iterations once the residual of
    # G G^T w = 1/w is below 1e-3; agreement is to that tolerance. Clipping is off in both.
    G = random_gradients(K, P, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cvxpy's note that the problem is not DPP
        theirs = tjd.NashMTL(n_tasks=K, max_norm=0.0, optim_niter=100)(G)
    assert_close(ours("nashmtl", G, max_norm=0.0), theirs, rtol=1e-5)


@pytest.mark.parametrize(("K", "P", "seed"), CASES)
def test_cagrad_matches_torchjd_and_solves_its_dual_at_least_as_well(K, P, seed):
    # torchjd does not rescale (our rescale=0) and solves the dual with CLARABEL at its default
    # tolerance; our SLSQP solution agrees to 1e-4 and never has a worse dual objective.
    G = random_gradients(K, P, seed)
    assert_close(ours("cagrad", G, rescale=0), tjd.CAGrad(c=0.4)(G), rtol=1e-4)

    gramian = G @ G.T
    A = (gramian / gramian.diagonal().mean()).numpy()
    b, radius = A.mean(axis=1), 0.4 * np.sqrt(A.mean())

    def dual(weights):  # recover the simplex point w from 1/K + radius / ||g_w|| * w
        w = weights.numpy() - 1 / K
        w = w / w.sum()
        return w @ b + radius * np.sqrt(w @ A @ w)

    mine = dual(CAGrad(rescale=0).weights(gramian, torch.ones(K)))
    assert mine <= dual(tjd.CAGradWeighting(c=0.4)(gramian)) + 1e-12
