"""The combiner cost measurement shared by bench/combiner_overhead.py and notebook 05: which
steps it takes, in which order, and what it returns (no timing assertions)."""

import pytest

from mtl_tutor import step_cost
from mtl_tutor.combiners import get_combiner
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import build_run


def test_each_combiner_step_follows_a_sum_step_after_one_warm_up_each(
        synthetic_dir, tmp_path, monkeypatch):
    config = TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"),
                         batch_size=8, max_length=32, progress=False)
    run = build_run(config)
    batches = [[next(run.streams[t])] for t in config.tasks]
    combiners = {name: get_combiner(name, seed=0) for name in ("pcgrad", "gradvac")}
    seen, durations = [], iter(range(1, 1000))  # the n-th timed step "lasts" n seconds
    monkeypatch.setattr(step_cost, "timed_step",
                        lambda run, batches, device: (seen.append(run.combiner.name),
                                                      next(durations))[1])
    ratios, sum_seconds = step_cost.step_time_ratios(run, batches, combiners, repeats=2)
    assert seen == ["sum", "pcgrad", "gradvac"] + ["sum", "pcgrad", "sum", "gradvac"] * 2
    # durations 4..11 after the warm-up: pcgrad 5/4 and 9/8, gradvac 7/6 and 11/10
    assert ratios == {"pcgrad": pytest.approx((5 / 4 + 9 / 8) / 2),
                      "gradvac": pytest.approx((7 / 6 + 11 / 10) / 2)}
    assert sum_seconds == pytest.approx((6 + 8) / 2)  # median of 4, 6, 8, 10
    assert run.combiner.name == "sum"
    seen.clear()
    durations = iter(range(1, 1000))
    samples, sum_steps = step_cost.step_time_samples(run, batches, combiners, repeats=2)
    assert samples == {"pcgrad": [5 / 4, 9 / 8], "gradvac": [7 / 6, 11 / 10]}  # each repetition
    assert sum_steps == [4, 6, 8, 10]


def test_a_timed_step_is_one_training_step(synthetic_dir, tmp_path):
    config = TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"),
                         batch_size=8, max_length=32, progress=False)
    run = build_run(config)
    batches = [[next(run.streams[t])] for t in config.tasks]
    before = [p.detach().clone() for p in run.model.shared_parameters()]
    assert isinstance(step_cost.timed_step(run, batches, run.device), float)
    assert run.optimizer.state_dict()["state"]  # AdamW stepped once
    assert any(not p.equal(q) for p, q in zip(run.model.shared_parameters(), before))


def test_the_measurement_needs_a_sum_run(synthetic_dir, tmp_path):
    config = TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"),
                         batch_size=8, max_length=32, progress=False, combiner="pcgrad")
    run = build_run(config)
    with pytest.raises(ValueError, match="sum"):
        step_cost.step_time_ratios(run, [], {})
    with pytest.raises(ValueError, match="repeats"):
        step_cost.step_time_ratios(run, [], {}, repeats=0)
