"""Every combiner under every sampler: it trains, or the run is refused before its first step;
DWA's logged weights against its formula; task weights and interventions in the log."""

import math

import pytest
import torch
from test_train import config, read_jsonl

from mtl_tutor.cli import main
from mtl_tutor.combiners import COMBINER_NAMES, get_combiner
from mtl_tutor.train import build_run, draw_batches, take_step, train

SAMPLERS = {  # name: (sampler, its options)
    "round-robin shuffled": ("round-robin", {"task_order": "shuffled"}),
    "sequential": ("sequential", {}),
    "proportional": ("proportional", {}),
    "annealed": ("annealed", {}),
    "round-robin with a warm-up": ("round-robin", {"warmup_task": "quora",
                                                   "warmup_epochs": 1}),
}
STATEFUL = [n for n in COMBINER_NAMES if get_combiner(n, tasks=["a", "b"]).state_dict()
            or n in ("dwa", "dbmtl", "nashmtl")]  # their state starts empty and grows


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny model's operations are small: on a busy 2-core machine threads only wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("name", COMBINER_NAMES)
def test_every_sampler_and_combiner_trains_or_is_refused_before_the_first_step(
        name, sampler, synthetic_dir, tmp_path):
    sampler_name, options = SAMPLERS[sampler]
    run_config = config(synthetic_dir, tmp_path, combiner=name, sampler=sampler_name,
                        sampler_options=options, max_steps=2)
    if get_combiner(name).needs_every_task and sampler != "round-robin shuffled":
        with pytest.raises(ValueError, match=f"sampler '{sampler_name}'.*combiner '{name}'.*"
                                             "needs every task in every step"):
            build_run(run_config)
        assert not (tmp_path / "run" / "run_config.json").exists()  # refused before anything
        return
    run = build_run(run_config)
    for step in range(2):
        tasks = next(run.sampler)
        batches = [[next(run.streams[t]).to(run.device)] for t in tasks]
        losses, stats = take_step(run, batches, step)
        assert torch.isfinite(losses).all()
        if "weights" in stats:  # each task of the step has its own, finite weight
            assert list(stats["weights"]) == tasks
            assert all(math.isfinite(w) for w in stats["weights"].values())
    assert all(torch.isfinite(p).all() for p in run.model.parameters())


@pytest.mark.parametrize("name", STATEFUL)
def test_a_sequential_run_of_a_stateful_combiner_trains_or_stops_before_step_0(
        name, synthetic_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--backbone", "tiny", "--data", str(synthetic_dir), "--out", str(out),
                 "--combiner", name, "--sampler", "sequential", "--max-steps", "3",
                 "--batch-size", "8", "--max-length", "32", "--no-progress"])
    if get_combiner(name).needs_every_task:
        assert code != 0
        error = capsys.readouterr().err
        assert "sampler 'sequential'" in error and f"combiner '{name}'" in error
        assert not (out / "log.jsonl").exists() and not (out / "checkpoint.pt").exists()
        return
    assert code == 0
    log = read_jsonl(out / "log.jsonl")
    assert [r["step"] for r in log] == [0, 1, 2]
    assert all(len(r["losses"]) == 1 for r in log)  # one task per step


def test_dwa_logs_eq_7_from_each_tasks_own_epoch_means(synthetic_dir, tmp_path):
    # Shuffled task order: row k is a different task at every step; each logged weight must be
    # DWA's Eq. 7 (T = 2) from that task's own mean training loss over the previous two epochs.
    out = tmp_path / "run"
    code = main(["train", "--backbone", "tiny", "--data", str(synthetic_dir), "--out", str(out),
                 "--combiner", "dwa", "--sampler", "round-robin", "--sampler-opt",
                 "task_order=shuffled", "--epochs", "4", "--batch-size", "8",
                 "--max-length", "32", "--no-progress"])
    assert code == 0
    log = read_jsonl(out / "log.jsonl")
    tasks = ("sst", "quora", "sts")
    epochs = sorted({r["epoch"] for r in log})
    assert epochs == [0, 1, 2, 3]
    assert any(list(r["losses"]) != list(tasks) for r in log)  # the order did change
    means = {e: {t: sum(r["losses"][t] for r in log if r["epoch"] == e)
                 / sum(1 for r in log if r["epoch"] == e) for t in tasks} for e in epochs}
    for record in log:
        e = record["epoch"]
        assert list(record["weights"]) == list(record["losses"])  # keyed like the losses
        if e < 2:
            assert all(w == 1.0 for w in record["weights"].values())
            continue
        ratios = {t: means[e - 1][t] / means[e - 2][t] for t in tasks}
        total = sum(math.exp(r / 2) for r in ratios.values())
        for t in tasks:
            assert record["weights"][t] == pytest.approx(3 * math.exp(ratios[t] / 2) / total,
                                                         rel=1e-6)
    later = [r["weights"] for r in log if r["epoch"] >= 2]
    assert any(abs(w - 1.0) > 1e-3 for weights in later for w in weights.values())


@pytest.mark.parametrize("name", ["pcgrad", "gradvac", "mgda", "uncertainty", "famo"])
def test_the_log_holds_each_tasks_weight(name, synthetic_dir, tmp_path):
    train(config(synthetic_dir, tmp_path, combiner=name, max_steps=2))
    for record in read_jsonl(tmp_path / "run" / "log.jsonl"):
        assert list(record["weights"]) == list(record["losses"])
        if name in ("pcgrad", "gradvac"):  # gradient surgery says which gradients it altered
            assert list(record["altered"]) == list(record["losses"])


def test_gradnorm_moves_its_weights_in_a_run_whose_heads_skip_the_pooler(synthetic_dir,
                                                                         tmp_path):
    """The default heads mean-pool, so the pooler (the last column group of G) has no
    gradient; GradNorm balances the last encoder layer instead, and its weights leave 1."""
    run = build_run(config(synthetic_dir, tmp_path, combiner="gradnorm", max_steps=3))
    last = run.grads.layer_slices[-1]
    assert last[0] == "pooler"
    for step in range(3):
        take_step(run, draw_batches(run, next(run.sampler)), step)
        assert not run.grads.G[:, last[1]].any()
    assert not torch.allclose(run.combiner.task_weights,
                              torch.ones(3, dtype=torch.float64))
