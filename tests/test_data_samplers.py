"""Task samplers: which tasks each step holds, epoch lengths, annealing, warm-up, exact resume."""

from collections import Counter

import pytest

from mtl_tutor.data import SAMPLER_NAMES, get_sampler

SIZES = {"sst": 80, "quora": 200, "sts": 40}  # 8, 20 and 4 batches of 10


def epoch_steps(sampler, epoch):
    start = sampler.total_steps(epoch)
    return [sampler.tasks_for_step(start + i) for i in range(sampler.steps_per_epoch(epoch))]


def test_sampler_names():
    assert SAMPLER_NAMES == ("round-robin", "sequential", "proportional", "annealed")


@pytest.mark.parametrize("epoch_length, steps", [("min", 4), ("max", 20), ("sst", 8)])
def test_round_robin_gives_every_task_every_step_and_aligns_the_epoch(epoch_length, steps):
    sampler = get_sampler("round-robin", SIZES, 10, epoch_length=epoch_length)
    assert sampler.steps_per_epoch() == steps
    assert epoch_steps(sampler, 0) == [["sst", "quora", "sts"]] * steps
    assert sampler.epoch_of(steps) == (1, 0) and sampler.epoch_of(steps - 1) == (0, steps - 1)


def test_round_robin_shuffled_order_is_a_fresh_permutation_each_step():
    sampler = get_sampler("round-robin", SIZES, 10, task_order="shuffled", seed=1)
    steps = [tuple(next(sampler)) for _ in range(60)]
    assert all(sorted(s) == sorted(SIZES) for s in steps)
    assert len(set(steps)) == 6  # all 3! orders appear


def test_sequential_runs_through_each_task_in_turn():
    sampler = get_sampler("sequential", SIZES, 10)
    assert sampler.steps_per_epoch() == 32
    assert epoch_steps(sampler, 1) == [["sst"]] * 8 + [["quora"]] * 20 + [["sts"]] * 4
    sized = get_sampler("sequential", SIZES, 10, epoch_length="sts")  # epochs sized to STS
    assert sized.steps_per_epoch() == 12
    assert epoch_steps(sized, 1) == [["sst"]] * 4 + [["quora"]] * 4 + [["sts"]] * 4
    with pytest.raises(ValueError, match="epoch_length"):
        get_sampler("sequential", SIZES, 10, epoch_length="max")


def test_proportional_draws_tasks_in_proportion_to_their_size():
    sampler = get_sampler("proportional", SIZES, 10, seed=2, steps_per_epoch=8000)
    counts = Counter(t for tasks in epoch_steps(sampler, 0) for t in tasks)
    for task, size in SIZES.items():
        assert counts[task] / 8000 == pytest.approx(size / 320, abs=0.02)
    assert get_sampler("proportional", SIZES, 10).steps_per_epoch() == 32


def test_annealed_alpha_goes_from_1_to_0_2_as_stickland_and_murray_define_it():
    sampler = get_sampler("annealed", SIZES, 10, epochs=5)
    assert [sampler.alpha(e) for e in range(7)] == pytest.approx([1, 0.8, 0.6, 0.4, 0.2, 0.2, 0.2])
    first, last = sampler.probabilities(0), sampler.probabilities(4)
    assert first == pytest.approx([80 / 320, 200 / 320, 40 / 320])
    sizes = [80 ** 0.2, 200 ** 0.2, 40 ** 0.2]
    assert last == pytest.approx([s / sum(sizes) for s in sizes])
    assert get_sampler("annealed", SIZES, 10, epochs=1).alpha(0) == 1.0


def test_annealed_draws_follow_the_epoch_probabilities():
    sampler = get_sampler("annealed", SIZES, 10, epochs=2, steps_per_epoch=6000, seed=3)
    for epoch in (0, 1):
        counts = Counter(t for tasks in epoch_steps(sampler, epoch) for t in tasks)
        observed = [counts[t] / 6000 for t in SIZES]
        assert observed == pytest.approx(sampler.probabilities(epoch), abs=0.02)


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_warmup_trains_one_task_first_then_the_sampler(name):
    sampler = get_sampler(name, SIZES, 10, warmup_task="quora", warmup_epochs=2)
    plain = get_sampler(name, SIZES, 10)
    assert [sampler.steps_per_epoch(e) for e in range(3)] == [20, 20, plain.steps_per_epoch(0)]
    assert all(tasks == ["quora"] for tasks in epoch_steps(sampler, 0) + epoch_steps(sampler, 1))
    assert epoch_steps(sampler, 2) == epoch_steps(plain, 0)


def test_warmup_epochs_sized_to_another_task():
    sized = get_sampler("round-robin", SIZES, 10, warmup_task="quora", warmup_epochs=2,
                        warmup_epoch_length="sts", epoch_length="sts")
    assert [sized.steps_per_epoch(e) for e in range(3)] == [4, 4, 4]  # 40 STS rows / 10
    assert [sized.tasks_for_step(s) for s in (0, 7, 8)] == [["quora"], ["quora"],
                                                            ["sst", "quora", "sts"]]
    with pytest.raises(ValueError, match="warmup_epoch_length must be one of sst, quora, sts"):
        get_sampler("sequential", SIZES, 10, warmup_task="sst", warmup_epochs=1,
                    warmup_epoch_length="mnli")
    with pytest.raises(ValueError, match="needs both warmup_task and warmup_epochs"):
        get_sampler("sequential", SIZES, 10, warmup_task="sst", warmup_epoch_length="sts")


@pytest.mark.parametrize("name, options", [
    ("round-robin", {"task_order": "shuffled"}), ("sequential", {}), ("proportional", {}),
    ("annealed", {"epochs": 3}), ("annealed", {"warmup_task": "sst", "warmup_epochs": 1}),
])
def test_restored_sampler_yields_exactly_the_same_next_steps(name, options):
    sampler = get_sampler(name, SIZES, 10, seed=7, **options)
    for _ in range(23):
        next(sampler)
    state = sampler.state_dict()
    expected = [next(sampler) for _ in range(50)]
    restored = get_sampler(name, SIZES, 10, seed=0, **options)
    restored.load_state_dict(state)
    assert [next(restored) for _ in range(50)] == expected


def test_state_of_another_configuration_is_refused():
    state = get_sampler("round-robin", SIZES, 10).state_dict()
    with pytest.raises(ValueError, match="sampler state was saved with"):
        get_sampler("round-robin", SIZES, 10, epoch_length="min").load_state_dict(state)


def test_unknown_names_and_options_list_the_valid_ones():
    with pytest.raises(ValueError, match="round-robin, sequential, proportional, annealed"):
        get_sampler("uniform", SIZES, 10)
    with pytest.raises(ValueError, match="unknown option.*temperature.*valid options: epochs, "
                                         "steps_per_epoch, warmup_task, warmup_epochs, "
                                         "warmup_epoch_length"):
        get_sampler("annealed", SIZES, 10, temperature=2)
    with pytest.raises(ValueError, match="epoch_length must be 'min', 'max' or a task name"):
        get_sampler("round-robin", SIZES, 10, epoch_length="cfimdb")
    with pytest.raises(ValueError, match="warmup_task must be one of sst, quora, sts"):
        get_sampler("sequential", SIZES, 10, warmup_task="mnli", warmup_epochs=1)
    with pytest.raises(ValueError, match="needs both warmup_task and warmup_epochs"):
        get_sampler("sequential", SIZES, 10, warmup_task="sst")
    with pytest.raises(ValueError, match=r"task_sizes\['sts'\] must be a positive integer"):
        get_sampler("sequential", {**SIZES, "sts": 0}, 10)


def test_docstring_examples_run():
    import doctest

    from mtl_tutor.data import sampling

    result = doctest.testmod(sampling)
    assert result.attempted >= 1 and result.failed == 0


@pytest.mark.parametrize(("name", "options"), [
    ("round-robin", {}), ("round-robin", {"task_order": "shuffled"}), ("sequential", {}),
    ("proportional", {}), ("annealed", {}),
    ("round-robin", {"warmup_task": "sst", "warmup_epochs": 1}),
    ("round-robin", {"warmup_task": "sst", "warmup_epochs": 0}),
])
@pytest.mark.parametrize("sizes", [SIZES, {"sst": 30}])
def test_a_sampler_says_whether_every_step_holds_every_task(name, options, sizes):
    sampler = get_sampler(name, sizes, 10, seed=2, **options)
    steps = [tasks for epoch in range(3) for tasks in epoch_steps(sampler, epoch)]
    every = all(sorted(tasks) == sorted(sizes) for tasks in steps)
    assert sampler.every_step_holds_every_task == every
