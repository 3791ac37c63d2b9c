"""``mtl-tutor train --recipe FILE [--profile NAME]``: a recipe file's settings, sized by a profile,
every flag given overriding them; a file of several combiners needs --combiner."""

import json
from pathlib import Path

import pytest

from mtl_tutor.cli import main
from mtl_tutor.leaderboard.recipe_file import recipe_config


@pytest.fixture()
def recipes(tmp_path):
    (tmp_path / "surgery.toml").write_text(
        'name = "surgery"\ndescription = "x"\ncombiner = "gradvac"\n'
        'combiner_options = {target_update = "on-intervention"}\nepochs = 3\n'
        'heads.sts = {name = "cosine", scale = 5.0}\nsampler_options = {task_order = "shuffled"}\n'
        '[profiles.small]\nlr = 2e-4\n')
    (tmp_path / "many.toml").write_text(
        'name = "many"\ndescription = "x"\ncombiners = ["sum", "gradvac"]\n'
        'combiner_options.gradvac = {beta = 0.02}\n')
    (tmp_path / "profiles.toml").write_text(
        '[small]\ndescription = "short"\nseeds = [0]\n[small.settings]\nepochs = 1\n'
        'sampler_options = {epoch_length = "sts"}\n')
    return tmp_path


def test_flags_override_the_recipe_and_mappings_merge(recipes):
    config = recipe_config(recipes / "surgery.toml", None, {"lr": 1e-4, "heads": {
        "sts": {"scale": 4.0}}})
    assert (config.combiner, config.epochs, config.lr) == ("gradvac", 3, 1e-4)
    assert config.combiner_options == {"target_update": "on-intervention"}
    assert config.heads["sts"].name == "cosine" and config.heads["sts"].options == {"scale": 4.0}
    other = recipe_config(recipes / "surgery.toml", None, {"combiner": "pcgrad"})
    assert other.combiner == "pcgrad" and other.combiner_options == {}  # gradvac's options go


def test_a_profile_sizes_the_recipe_then_its_own_profile_table_applies(recipes):
    config = recipe_config(recipes / "surgery.toml", "small", {})
    assert config.epochs == 1 and config.lr == 2e-4
    assert config.sampler_options == {"task_order": "shuffled", "epoch_length": "sts"}
    assert recipe_config(recipes / "surgery.toml", "small", {"epochs": 2}).epochs == 2
    with pytest.raises(ValueError, match="--profile: no profile 'gpu' in .*profiles.toml"):
        recipe_config(recipes / "surgery.toml", "gpu", {})


def test_a_file_of_several_combiners_takes_one_by_name(recipes):
    with pytest.raises(ValueError, match=r"holds one run per combiner \(sum, gradvac\); "
                                         r"choose one with --combiner"):
        recipe_config(recipes / "many.toml", None, {})
    config = recipe_config(recipes / "many.toml", None, {"combiner": "gradvac"})
    assert config.combiner_options == {"beta": 0.02}
    assert recipe_config(recipes / "many.toml", None, {"combiner": "sum"}).combiner_options == {}


def test_train_from_a_recipe_on_the_command_line(recipes, synthetic_dir, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--recipe", str(recipes / "surgery.toml"), "--profile", "small",
                 "--backbone", "tiny", "--data", str(synthetic_dir), "--out", str(run),
                 "--batch-size", "8", "--max-length", "32", "--max-steps", "1",
                 "--no-progress", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((run / "run_config.json").read_text())
    assert (saved["combiner"], saved["epochs"], saved["lr"], saved["batch_size"]) == (
        "gradvac", 1, 2e-4, 8)
    assert saved["heads"]["sts"] == {"name": "cosine", "scale": 5.0}
    assert main(["train", "--recipe", str(recipes / "surgery.toml"), "--lr", "nan",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "error: --lr: lr must be a finite number > 0, got nan" in capsys.readouterr().err
    assert main(["train", "--profile", "small", "--out", str(tmp_path / "bad")]) == 2
    assert "--profile: a profile sizes a recipe; give --recipe FILE too" in \
        capsys.readouterr().err
    # a file to read is missing: exit code 3
    assert main(["train", "--recipe", str(tmp_path / "nope.toml"), "--out", str(run)]) == 3
    assert "--recipe: no such file" in capsys.readouterr().err


def test_the_recipe_profile_trains_every_shipped_recipe_exactly_as_its_file_says():
    """A record of ``--profile recipe`` is what ``mtl-tutor train --recipe FILE`` trains."""
    from mtl_tutor.leaderboard import load_board

    configs = Path(__file__).resolve().parents[1] / "configs"
    board = load_board("recipe", configs=[configs], data="data")
    assert board.runs and {run.seed for run in board.runs} == {0}
    for run in board.runs:
        as_written = recipe_config(run.recipe.source, None, {
            "data": "data", "out": run.config.out, "combiner": run.config.combiner})
        assert run.config == as_written, run.recipe.name
