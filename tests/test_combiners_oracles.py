"""Our directions against torchjd's aggregators on random G (fixed seeds).

torchjd's ``Aggregator`` maps a Jacobian [K, P] to a vector, drawing its random choices from
the global torch RNG; ours draw from their own generator seeded with ``seed``. Seeding the
global RNG with the same seed makes the draws identical when both draw the same calls in the
same order, which is what makes these comparisons exact. Scaling conventions that differ are
noted at each test.
"""

import pytest
import torch
from torchjd import aggregation as tjd

from mtl_tutor.combiners import get_combiner

SHAPES = [(2, 7), (3, 100), (4, 1000), (5, 10_000)]


def random_gradients(K, P, seed):
    """Gradients with real conflicts: a shared component plus larger task-specific noise."""
    generator = torch.Generator().manual_seed(seed)
    shared = torch.randn(1, P, generator=generator, dtype=torch.float64)
    return shared + 2 * torch.randn(K, P, generator=generator, dtype=torch.float64)


def assert_close(ours, theirs, rtol=1e-5):
    scale = theirs.norm()
    assert (ours - theirs).norm() <= rtol * scale + 1e-12, ((ours - theirs).norm(), scale)


@pytest.mark.parametrize(("K", "P"), SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pcgrad_matches_torchjd(K, P, seed):
    # Same draws: one torch.randperm(K) per task i, in order. Both sum the projected rows.
    G = random_gradients(K, P, seed)
    ours = get_combiner("pcgrad", seed=seed)(G, torch.ones(K))
    torch.manual_seed(seed)
    assert_close(ours, tjd.PCGrad()(G))
