"""Every combiner's state_dict round-trips through a checkpoint and resumes exactly."""

import io

import pytest
import torch
from combiner_helpers import fresh, gradient_matrix

from mtl_tutor.combiners import COMBINER_NAMES, EpochEnd, LossesAfterStep

K, P = 3, 40


TASKS = ("sst", "quora", "sts")


def step(combiner, seed):
    """One training step as the trainer drives it, returning the direction."""
    G = gradient_matrix("random", K, P, 1.0, seed)
    G[1] = 0.3 * G[1] - G[0]  # tasks 0 and 1 conflict, so PCGrad's task order matters
    losses = torch.rand(K, generator=torch.Generator().manual_seed(seed), dtype=G.dtype) + 0.5
    if not combiner.needs_gradients:
        combiner.loss_weights(losses, TASKS)  # the trainer's single-backward path
    d = combiner(G, losses, TASKS)
    if LossesAfterStep in combiner.events:
        combiner.on_event(LossesAfterStep(dict(zip(TASKS, (0.9 * losses).tolist()))))
    return d


def trained(name):
    """A combiner after three steps and three epoch ends."""
    combiner = fresh(name, K, P, seed=3, tasks=TASKS)
    for seed in range(3):
        step(combiner, seed)
        combiner.on_event(EpochEnd(seed, dict(zip(TASKS, [1.0 / (seed + 1), 2.0, 3.0]))))
    return combiner


@pytest.mark.parametrize("name", COMBINER_NAMES)
def test_state_dict_round_trip_gives_the_identical_next_direction(name):
    original = trained(name)
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    restored = fresh(name, K, P, seed=3, tasks=TASKS)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    for seed in range(3, 6):  # several steps: the RNG and every buffer must have been restored
        assert torch.equal(step(restored, seed), step(original, seed))


@pytest.mark.parametrize("name", COMBINER_NAMES)
def test_state_is_keyed_by_task_name_not_by_position(name):
    # A checkpoint restores each task's own state into a combiner that lists its tasks in
    # another order.
    original = trained(name)
    reordered = fresh(name, K, P, seed=3, tasks=TASKS[::-1])
    reordered.load_state_dict(original.state_dict())
    for key, value in original.state_dict().items():
        assert torch.equal(reordered.state_dict()[key], value), key
    with_names = [key for key in original.state_dict() if any(t in key for t in TASKS)]
    stateful = {"uncertainty", "gradvac", "dwa", "famo", "gradnorm", "dbmtl", "nashmtl"}
    assert bool(with_names) == (name in stateful)


@pytest.mark.parametrize("name", ["pcgrad", "gradvac", "rlw", "graddrop"])
def test_random_combiners_restore_their_generator(name):
    # Without the state, a fresh combiner with the same seed repeats the first draws instead.
    original = fresh(name, K, P, seed=3, tasks=TASKS)
    first = [step(original, 0) for _ in range(4)]
    restarted = fresh(name, K, P, seed=3, tasks=TASKS)
    restarted.load_state_dict(original.state_dict())
    assert torch.equal(step(restarted, 0), step(original, 0))
    assert any(not torch.equal(first[0], later) for later in first[1:])
