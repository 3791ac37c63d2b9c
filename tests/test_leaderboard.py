"""The leaderboard tool: every recipe in configs/ builds; unknown keys are named; an end-to-end
run on the synthetic corpus writes the table and skips finished runs when invoked again."""

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from mtl_tutor.cli import main
from mtl_tutor.combiners import COMBINER_NAMES
from mtl_tutor.leaderboard import runs
from mtl_tutor.leaderboard.recipes import check_recipe, load_recipes, recipe_files
from mtl_tutor.leaderboard.report import aggregate, markdown_table
from mtl_tutor.leaderboard.runs import log_statistics, run_once
from mtl_tutor.train import TrainingDiverged

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_every_config_builds_and_every_combiner_is_on_the_board():
    recipes = [r for path in recipe_files([CONFIGS]) for r in load_recipes(path)]
    names = [r.name for r in recipes]
    assert len(names) == len(set(names))
    for recipe in recipes:
        assert recipe.config.backbone == "minilm-l6"
        assert recipe.seeds == (0, 1, 2)
        check_recipe(recipe.config)  # combiner, sampler and model built, nothing trained
    assert set(COMBINER_NAMES) <= {r.config.combiner for r in recipes}
    cross = {r.name: r.config for r in recipes if r.name.startswith("cross_heads-")}
    assert all(c.pair_encoding == "cross" for c in cross.values())
    assert "cross_heads-mgda" in cross


def test_unknown_key_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('name = "typo"\ndescription = "x"\nlearning_rate = 1e-4\n')
    with pytest.raises(ValueError, match=r"typo\.toml: unknown key 'learning_rate'"):
        load_recipes(path)
    path.write_text('name = "typo"\ndescription = "x"\nseed = 3\n')
    with pytest.raises(ValueError, match=r"typo\.toml: key 'seed' is set by the leaderboard"):
        load_recipes(path)
    path.write_text('name = "typo"\ndescription = "x"\npair_encoding = "both"\n')
    with pytest.raises(ValueError, match=r"typo\.toml: pair_encoding must be"):
        load_recipes(path)


def test_combiners_expand_into_one_run_each(tmp_path):
    path = tmp_path / "many.toml"
    path.write_text('name = "many"\ndescription = "x"\nseeds = [4]\n'
                    'combiners = ["sum", "pcgrad"]\nepochs = 2\n')
    recipes = load_recipes(path)
    assert [(r.name, r.config.combiner, r.config.epochs, r.seeds) for r in recipes] == [
        ("many-sum", "sum", 2, (4,)), ("many-pcgrad", "pcgrad", 2, (4,))]


def test_log_statistics_counts_conflicts_changes_and_skips_evaluations():
    records = [
        {"step": 0, "epoch": 0, "time": 1.0, "losses": {"a": 1.0, "b": 1.0},
         "cosines": {"a/b": -0.1}, "conflict": True, "changed": 0.5},
        {"step": 1, "epoch": 0, "time": 2.0, "losses": {"a": 1.0, "b": 1.0},
         "cosines": {"a/b": 0.3}, "conflict": False, "changed": 0.0},
        {"step": 2, "epoch": 1, "time": 13.0, "losses": {"a": 1.0, "b": 1.0},
         "cosines": {"a/b": 0.2}, "conflict": False, "changed": 0.02},  # after the evaluation
        {"step": 3, "epoch": 1, "time": 14.0, "losses": {"a": 1.0}, "cosines": {},
         "conflict": False, "changed": 0.0},
    ]
    stats = log_statistics(records, eval_steps=[2])
    assert stats["steps"] == 4
    assert stats["steps_per_second"] == pytest.approx(3 / 3.0)
    assert stats["conflict_fraction"] == pytest.approx(1 / 3)
    assert stats["changed_fraction_per_epoch"] == {0: 0.5, 1: 1.0}
    no_pairs = log_statistics([{"step": 0, "epoch": 0, "time": 0.5, "losses": {}}], [])
    assert no_pairs["conflict_fraction"] is None and no_pairs["changed_fraction_per_epoch"] == {}


def test_a_diverged_run_is_recorded_and_shown(tmp_path, monkeypatch):
    def diverge(config, resume):
        raise TrainingDiverged("step 3: the loss of task sts is NaN or infinite")

    monkeypatch.setattr(runs, "train", diverge)
    path = tmp_path / "wild.toml"
    path.write_text('name = "wild"\ndescription = "too fast"\nseeds = [0]\nlr = 10.0\n'
                    'device = "cpu"\n')
    (recipe,) = load_recipes(path)
    config = replace(recipe.config, out=str(tmp_path / "wild" / "seed0"))
    Path(config.out).mkdir(parents=True)
    result, trained = run_once(recipe, config)
    assert trained and "sts is NaN" in result["diverged"] and result["metrics"] == {}
    assert run_once(recipe, config) == (result, False)  # recorded: not run again
    row = aggregate(recipe, [result])
    assert row["diverged"] == 1 and row["metrics"] == {}
    assert row["wall_seconds"] is None and row["peak_memory_mib"] is None
    assert "| 1 | wild | 1 (1 diverged) |" in markdown_table([row])


def test_leaderboard_end_to_end_and_resumable(tmp_path, synthetic_dir, capsys):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "plain.toml").write_text(
        'name = "plain"\ndescription = "the sum"\nclaim = "baseline"\nseeds = [0, 1]\n'
        'combiner = "sum"\nbatch_size = 8\nmax_length = 32\n')
    (configs / "surgery.toml").write_text(
        'name = "surgery"\ndescription = "PCGrad"\nseeds = [0]\ncombiners = ["pcgrad"]\n'
        'batch_size = 8\nmax_length = 32\n')
    out = tmp_path / "board"
    argv = ["leaderboard", "--configs", str(configs), "--data", str(synthetic_dir),
            "--out", str(out), "--set", "backbone=tiny", "--set", "max_steps=2",
            "--set", "epochs=1", "--set", "progress=false"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert first.count("trained") == 3 and "skipped" not in first

    result = json.loads((out / "surgery-pcgrad" / "seed0" / "result.json").read_text())
    assert result["steps"] == 2 and result["config"]["backbone"] == "tiny"
    assert set(result["metrics"]) == {"sst_acc", "para_acc", "sts_pearson", "overall"}
    assert 0 <= result["conflict_fraction"] <= 1
    assert set(result["changed_fraction_per_epoch"]) == {"0"}
    assert result["steps_per_second"] > 0 and result["peak_memory_mib"] >= 0
    plain = json.loads((out / "plain" / "seed1" / "result.json").read_text())
    assert plain["conflict_fraction"] is None  # the sum logs no per-task gradients

    table = (out / "leaderboard.md").read_text()
    assert table.startswith("| rank | run | seeds | sst_acc | para_acc | sts_pearson | overall |")
    rows = {line.split(" | ")[1]: line for line in table.splitlines()[2:4]}
    assert set(rows) == {"plain", "surgery-pcgrad"}
    assert rows["plain"].split(" | ")[2] == "2" and rows["plain"].endswith("| — | — |")
    assert "- **plain**: the sum *Tests: baseline*" in table
    with open(out / "leaderboard.csv", newline="") as f:
        board = {row["name"]: row for row in csv.DictReader(f)}
    assert board["plain"]["seeds"] == "2" and board["plain"]["conflict_fraction_mean"] == ""
    overalls = [plain["metrics"]["overall"], json.loads(
        (out / "plain" / "seed0" / "result.json").read_text())["metrics"]["overall"]]
    assert float(board["plain"]["overall_mean"]) == pytest.approx(sum(overalls) / 2)
    assert board["surgery-pcgrad"]["overall_std"] == ""  # one seed: no spread
    assert (out / "leaderboard.html").exists()

    logs = {p: p.stat().st_mtime_ns for p in out.glob("*/seed*/log.jsonl")}
    assert len(logs) == 3
    older = out / "plain" / "seed0" / "result.json"  # as if recorded before a field existed
    recorded = json.loads(older.read_text())
    del recorded["config"]["log_layer_cosines"]
    older.write_text(json.dumps(recorded))
    assert main(argv) == 0
    assert capsys.readouterr().out.count("skipped (finished before)") == 3
    assert {p: p.stat().st_mtime_ns for p in logs} == logs
    assert (out / "leaderboard.md").read_text() == table

    changed = argv[:-1] + ["progress=false", "--set", "lr=0.01"]
    assert main(changed) == 2  # a finished run with other settings is not silently reused
    assert "other values of ['lr']" in capsys.readouterr().err
