"""Leaderboard records end to end on the synthetic corpus and the tiny backbone: one record per
run with its predictions, statistics and provenance; finished runs skipped, changed ones
refused; the report rebuilt from the records alone, every recipe listed; records refused when
the dev labels or the predictions no longer match; and the claims' verdicts."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mtl_tutor.cli import main
from mtl_tutor.data import load_task
from mtl_tutor.evaluate import accuracy, pearson
from mtl_tutor.leaderboard import leaderboard_report, runs
from mtl_tutor.leaderboard.bootstrap import NOT_DISTINGUISHABLE, Interval
from mtl_tutor.leaderboard.claims import Claim, load_claims
from mtl_tutor.leaderboard.evidence import Evidence
from mtl_tutor.leaderboard.records import epoch_statistics, source_state
from mtl_tutor.leaderboard.verdicts import judge, verdict
from mtl_tutor.run_log import read_steps, step_records
from mtl_tutor.train import TrainingDiverged

PROFILES = """[tiny]
description = "a few steps of the tiny BERT"
seeds = [0, 1]
other_seeds = [0]
[tiny.settings]
backbone = "tiny"
batch_size = 8
max_length = 32
epochs = 1
max_steps = 3
lr = 0.001
eval_batch_size = 32
device = "cpu"
progress = false
log_layer_cosines = false
[tiny.cost]
step_seconds = 1.0
evaluation_seconds = 1.0
setup_seconds = 1.0
"""

CLAIMS = """[[claim]]
id = "surgery"
report = "R"
text = "PCGrad beats the sum"
kind = "metric"
recipe = "surgery-pcgrad"
reference = "base"
metric = "overall"
expect = "higher"
confirms = "a higher overall"

[[claim]]
id = "weights"
report = "R"
text = "uncertainty favours paraphrase"
kind = "weights"
recipe = "weighted"
metric = "quora"
expect = "higher"
confirms = "the largest weight on Quora"

[[claim]]
id = "cost"
report = "R"
text = "GradAttention costs 2.3x PCGrad"
kind = "bench"
bench = "combiner_overhead"
recipe = "gradattention"
reference = "pcgrad"
metric = "step time ratio"
expect = "about"
value = 2.3
confirms = "a step 2.3 times as long"
"""


@pytest.fixture(scope="module")
def board_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    configs = root / "configs"
    configs.mkdir()
    (configs / "base.toml").write_text('name = "base"\ndescription = "the sum"\n')
    (configs / "surgery.toml").write_text('name = "surgery"\ndescription = "PCGrad"\n'
                                          'claim = "R: PCGrad"\ncombiners = ["pcgrad"]\n')
    (configs / "weighted.toml").write_text('name = "weighted"\ndescription = "uncertainty"\n'
                                           'combiner = "uncertainty"\n')
    (configs / "other.toml").write_text('name = "other"\ndescription = "GradVac"\n'
                                        'combiner = "gradvac"\n')
    (configs / "profiles.toml").write_text(PROFILES)
    (configs / "claims.toml").write_text(CLAIMS)
    bench = root / "bench"
    bench.mkdir()
    (bench / "combiner_overhead.json").write_text(json.dumps({
        "bench": "combiner_overhead", "reference": "sum",
        "ratios": {"pcgrad": [1.0, 1.1, 1.05], "gradattention": [1.1, 1.1, 1.1]}}))
    return root


def argv(root, data, *more):
    return ["leaderboard", "--profile", "tiny", "--configs", str(root / "configs"),
            "--baseline", "base", "--data", str(data), "--results", str(root / "results"),
            "--out", str(root / "runs"), "--bench", str(root / "bench"), *more]


@pytest.fixture(scope="module")
def recorded(board_dir, synthetic_dir):
    """The claims' runs (base, surgery-pcgrad and weighted, two seeds each) trained once."""
    args = argv(board_dir, synthetic_dir, "--only", "claims")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["mtl-tutor", *args])  # as the command line holds them
        assert main(args) == 0
    return board_dir / "results" / "tiny"


def test_each_run_leaves_one_record_with_its_predictions_and_provenance(recorded, board_dir,
                                                                        synthetic_dir):
    paths = sorted(p.relative_to(recorded).as_posix() for p in recorded.glob("*/seed*.json"))
    assert paths == ["base/seed0.json", "base/seed1.json", "surgery-pcgrad/seed0.json",
                     "surgery-pcgrad/seed1.json", "weighted/seed0.json", "weighted/seed1.json"]
    record = json.loads((recorded / "surgery-pcgrad" / "seed1.json").read_text())
    assert (record["recipe"], record["profile"], record["seed"]) == ("surgery-pcgrad", "tiny", 1)
    assert record["config"]["combiner"] == "pcgrad" and record["config"]["seed"] == 1
    assert "data" not in record["config"] and "out" not in record["config"]
    assert record["steps"] == 3 and len(record["evaluations"]) == 1 and record["selected"] == 0
    assert record["command"].startswith("mtl-tutor leaderboard --profile tiny")
    assert record["software"]["mtl_tutor"] and record["hardware"]["cpu_cores"] >= 1
    assert record["diverged"] is None and record["wall_seconds"] > 0
    for task, key in (("sst", "sst_acc"), ("quora", "para_acc"), ("sts", "sts_pearson")):
        dev = load_task(synthetic_dir, task, "dev")
        kept = record["dev"][task]
        assert kept["ids"] == [e.id for e in dev.examples]  # the file's order
        gold = np.array([e.label for e in dev.examples])
        score = (pearson if task == "sts" else accuracy)(np.array(kept["predictions"]), gold)
        assert score == pytest.approx(record["evaluations"][0][key], abs=1e-5)
        assert len(record["data"][task]["dev"]["sha256"]) == 64
    scratch = board_dir / "runs" / "tiny" / "surgery-pcgrad" / "seed1"
    assert (scratch / "model.safetensors").exists() and not (scratch / "checkpoint.pt").exists()
    steps = read_steps(scratch)
    (epoch,) = record["epochs"]
    assert epoch == epoch_statistics(steps, ("sst", "quora", "sts"))[0]
    assert epoch["surgery_steps"] == 3 == epoch["pair_steps"]
    assert epoch["altered_gradients"] == sum(sum(s.altered.values()) for s in steps)
    assert epoch["task_gradients"] == 9
    weighted = json.loads((recorded / "weighted" / "seed0.json").read_text())
    assert set(weighted["epochs"][0]["weights"]) == {"sst", "quora", "sts"}
    assert weighted["epochs"][0]["pair_steps"] == 0  # one backward pass: no per-task gradients


def test_epoch_statistics_count_conflicts_interventions_and_weights_per_epoch():
    records = step_records([
        {"step": 0, "epoch": 0, "losses": {"a": 1, "b": 1, "c": 1},
         "cosines": {"a/b": -0.1, "a/c": 0.2, "b/c": 0.3}, "changed": 0.5,
         "altered": {"a": True, "b": True, "c": False}, "weights": {"a": 1, "b": 2, "c": 3}},
        {"step": 1, "epoch": 0, "losses": {"a": 1, "b": 1, "c": 1},
         "cosines": {"b/a": 0.1, "a/c": -0.2, "c/b": 0.3}, "changed": 0.0,
         "altered": {"a": False, "b": False, "c": False}, "weights": {"a": 3, "b": 2, "c": 1}},
        {"step": 2, "epoch": 1, "losses": {"a": 1}},  # one task: no pair
    ])
    first, second = epoch_statistics(records, ("a", "b", "c"))
    assert first == {"epoch": 0, "steps": 2,
                     "negative_cosine": {"a/b": 0.5, "a/c": 0.5, "b/c": 0.0},
                     "pair_steps": 2, "any_pair": 1.0, "changed": 0.5, "surgery_steps": 2,
                     "intervention_steps": 1, "altered_gradients": 2, "task_gradients": 6,
                     "weights": {"a": 2.0, "b": 2.0, "c": 2.0}}
    assert second["negative_cosine"] is None and second["any_pair"] is None
    assert second["intervention_steps"] is None and second["weights"] is None


def test_finished_runs_are_skipped_and_changed_ones_refused(recorded, board_dir, synthetic_dir,
                                                            capsys):
    before = {p: p.stat().st_mtime_ns for p in recorded.glob("*/seed*.json")}
    assert main(argv(board_dir, synthetic_dir, "--only", "claims")) == 0
    assert "6 of 6 selected runs recorded; 0 to train" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert main(argv(board_dir, synthetic_dir, "--only", "base", "--set", "lr=0.01")) == 2
    error = capsys.readouterr().err
    assert "base/seed0.json was made with other lr than base seed 0 has now" in error
    assert main(argv(board_dir, synthetic_dir, "--plan")) == 0
    plan = capsys.readouterr().out
    assert "other seed 0" in plan and "to run" in plan and "1 of 7 runs to go" in plan


def test_the_report_lists_every_recipe_and_compares_with_the_baseline(recorded, board_dir,
                                                                      synthetic_dir, capsys):
    assert main(argv(board_dir, synthetic_dir, "--report-only")) == 0
    assert "6 recorded so far" in capsys.readouterr().out
    table = (recorded / "leaderboard.md").read_text()
    lines = {line.split(" | ")[1]: line for line in table.splitlines()
             if line.startswith("| ") and " | " in line and not line.startswith("| rank")}
    assert {"**base** (baseline)", "surgery-pcgrad", "weighted", "other"} <= set(lines)
    assert "not run yet: `mtl-tutor leaderboard --profile tiny --only other`" in lines["other"]
    assert lines["surgery-pcgrad"].split(" | ")[2] == "2/2"
    report = leaderboard_report("tiny", [board_dir / "configs"], synthetic_dir,
                                board_dir / "results", board_dir / "bench", baseline="base")
    rows = {row["name"]: row for row in report.rows}
    pcgrad = rows["surgery-pcgrad"]
    assert pcgrad["common_seeds"] == 2 and pcgrad["status"] == "complete"
    assert pcgrad["verdict"] == pcgrad["difference"]["overall"].verdict()
    overall = [json.loads((recorded / "surgery-pcgrad" / f"seed{s}.json").read_text())
               ["evaluations"][0]["overall"] for s in (0, 1)]
    assert pcgrad["metrics"]["overall"][0] == pytest.approx(np.mean(overall))
    base = [json.loads((recorded / "base" / f"seed{s}.json").read_text())
            ["evaluations"][0]["overall"] for s in (0, 1)]
    assert pcgrad["difference"]["overall"].estimate == pytest.approx(
        np.mean(overall) - np.mean(base), abs=1e-6)  # STS predictions are kept to 6 decimals
    assert rows["other"]["status"] == "not run yet" and rows["other"]["rank"] is None
    claims = {c["id"]: c for c in report.claims}
    assert claims["surgery"]["measured"] == pytest.approx(pcgrad["difference"]["overall"]
                                                          .estimate)
    weights = claims["weights"]  # quora's weight minus the largest other, in the last epoch
    margins = []
    for s in (0, 1):
        last = json.loads((recorded / "weighted" / f"seed{s}.json").read_text())["epochs"][-1]
        margins.append(last["weights"]["quora"] - max(last["weights"]["sst"],
                                                      last["weights"]["sts"]))
    assert weights["measured"] == pytest.approx(np.mean(margins))
    assert (weights["low"], weights["high"]) == pytest.approx((min(margins), max(margins)))
    assert weights["verdict"] == verdict(load_claims(board_dir / "configs" / "claims.toml")[1],
                                         Interval(np.mean(margins), min(margins),
                                                  max(margins)), 0.0)
    assert claims["cost"]["verdict"] == "does not hold: smaller than claimed"
    assert claims["cost"]["measured"] == pytest.approx(1.1 / 1.05)
    assert {p.name for p in recorded.iterdir() if p.is_file()} >= {
        "leaderboard.md", "leaderboard.csv", "leaderboard.html", "claims.md", "claims.csv"}
    assert "| R | GradAttention costs 2.3x PCGrad |" in (recorded / "claims.md").read_text()


def test_records_are_refused_against_other_dev_labels_or_altered_predictions(
        recorded, board_dir, synthetic_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    dev = data / "sts-dev.csv"
    dev.write_text(dev.read_text().replace("\t3.", "\t2.", 1))
    assert main(argv(board_dir, data, "--report-only")) == 2
    assert "made on a sts dev file with SHA-256" in capsys.readouterr().err
    results = tmp_path / "results"
    shutil.copytree(board_dir / "results", results)
    path = results / "tiny" / "base" / "seed0.json"
    record = json.loads(path.read_text())
    record["dev"]["sst"]["predictions"] = [(p + 1) % 5 for p in
                                           record["dev"]["sst"]["predictions"]]
    path.write_text(json.dumps(record))
    args = argv(board_dir, synthetic_dir, "--report-only")
    args[args.index("--results") + 1] = str(results)
    assert main(args) == 2
    assert "its sst predictions give sst_acc" in capsys.readouterr().err


def test_a_diverged_run_is_recorded_without_predictions(board_dir, synthetic_dir, tmp_path,
                                                        monkeypatch, capsys):
    def diverge(config, resume):
        raise TrainingDiverged("step 1: the loss of task sts is NaN or infinite")

    monkeypatch.setattr(runs, "train", diverge)
    args = argv(board_dir, synthetic_dir, "--only", "other")
    args[args.index("--results") + 1] = str(tmp_path / "results")
    assert main(args) == 0
    record = json.loads((tmp_path / "results" / "tiny" / "other" / "seed0.json").read_text())
    assert "sts is NaN" in record["diverged"] and record["dev"] is None
    assert record["selected"] is None and record["evaluations"] == []
    assert "| — | other | 0/1 (1 diverged) |" in (tmp_path / "results" / "tiny"
                                                   / "leaderboard.md").read_text()


def fake_record(seed, weights):
    return {"diverged": None, "selected": 0, "evaluations": [{"step": 1, "overall": 0.5}],
            "epochs": [{"weights": weights}]}


def test_a_weights_claim_reads_the_last_epochs_weights_of_every_seed():
    claim = Claim("w", "R", "favours quora", "weights", "u", None, "quora", "higher", "x")
    weights = [{"sst": 0.2, "quora": 0.5, "sts": 0.3}, {"sst": 0.1, "quora": 0.4, "sts": 0.35},
               {"sst": 0.3, "quora": 0.6, "sts": 0.2}]
    evidence = Evidence({("u", s): fake_record(s, w) for s, w in enumerate(weights)}, None)
    row = judge(claim, "cpu", evidence, "nowhere")
    assert row["measured"] == pytest.approx(np.mean([0.5 - 0.3, 0.4 - 0.35, 0.6 - 0.3]))
    assert (row["low"], row["high"]) == pytest.approx((0.05, 0.3))
    assert row["verdict"] == "holds" and row["seeds"] == 3
    untestable = Claim("w", "R", "t", "weights", "u", None, "quora", "higher", "x",
                       untestable={"cpu": "too short"})
    assert judge(untestable, "cpu", evidence, "nowhere")["verdict"] == \
        "not testable at this budget"
    one_seed = Evidence({("u", 0): fake_record(0, weights[0])}, None)
    assert judge(claim, "cpu", one_seed, "nowhere")["verdict"] == "not run yet"


@pytest.mark.parametrize("expect, value, interval, expected", [
    ("higher", None, (0.02, 0.01, 0.03), "holds"),
    ("higher", None, (-0.02, -0.03, -0.01), "does not hold: the other way"),
    ("higher", None, (0.01, -0.01, 0.03), NOT_DISTINGUISHABLE),
    ("lower", None, (-0.02, -0.03, -0.01), "holds"),
    ("about", 0.1, (0.09, 0.05, 0.12), "holds"),
    ("about", 0.02, (0.01, -0.01, 0.03), NOT_DISTINGUISHABLE),
    ("about", 0.1, (0.02, 0.01, 0.03), "the direction holds; smaller than claimed"),
    ("about", 0.1, (0.2, 0.15, 0.25), "the direction holds; larger than claimed"),
    ("about", 0.1, (0.01, -0.01, 0.03), "does not hold: smaller than claimed"),
    ("about", -0.1, (-0.02, -0.03, -0.01), "the direction holds; smaller than claimed"),
    ("about", 0.1, (-0.02, -0.03, -0.01), "does not hold: smaller than claimed"),
])
def test_verdicts_follow_the_interval(expect, value, interval, expected):
    claim = Claim("c", "R", "t", "metric", "a", "b", "overall", expect, "x", value)
    assert verdict(claim, Interval(*interval), 0.0) == expected


def test_source_state_counts_only_the_source_folder(tmp_path):
    """A record's ``dirty`` flag: a report rewritten beside the package (as a concurrent
    leaderboard run does) leaves it clean; an edited source file does not."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")

    def run(*args):
        subprocess.run([git, *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    (tmp_path / "report.md").write_text("old\n")
    run("init", "-q")
    run("add", ".")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    commit, dirty = source_state(tmp_path / "pkg")
    assert len(commit) == 40 and dirty is False
    (tmp_path / "report.md").write_text("new\n")
    assert source_state(tmp_path / "pkg") == (commit, False)
    (tmp_path / "pkg" / "code.py").write_text("x = 2\n")
    assert source_state(tmp_path / "pkg") == (commit, True)
    assert source_state(tmp_path.parent / "nowhere") == (None, None)
