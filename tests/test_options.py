"""Typed options: every value is checked where it is declared, with the same error from Python,
a TOML recipe and the command line; the train flags are generated from TrainConfig's fields;
run configs written before options were typed still load."""

import doctest
import json
import math
import os
import subprocess
import sys
import typing
from dataclasses import fields, replace
from pathlib import Path

import pytest

import mtl_tutor.options
from mtl_tutor.cli import build_parser, config_from_args, main
from mtl_tutor.cli_arguments import flag_of
from mtl_tutor.leaderboard.recipes import load_recipes
from mtl_tutor.model import build_model
from mtl_tutor.options import Bounds, OptionError, convert
from mtl_tutor.run_config import HeadConfig, PALConfig, TrainConfig
from mtl_tutor.train import train

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "runs_before_typed_options"


def test_the_module_examples_run():
    result = doctest.testmod(mtl_tutor.options)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("value, annotation, bounds, expected", [
    (3, float, Bounds(gt=0), 3.0),
    ([768], tuple[int, ...], None, (768,)),
    ("sst, sts", tuple[str, ...], None, ("sst", "sts")),
    (None, int | None, Bounds(ge=1), None),
    ([0.1, 0.2], tuple[float, float] | None, Bounds(ge=0, lt=1), (0.1, 0.2)),
    ({"a": 1}, dict[str, float], None, {"a": 1.0}),
    ("cross", typing.Literal["bi", "cross"], None, "cross"),
])
def test_values_take_their_declared_type(value, annotation, bounds, expected):
    converted = convert(value, annotation, "x", bounds)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize("value, annotation, bounds, message", [
    (float("nan"), float, None, "x must be a finite number, got nan"),
    (float("inf"), float | None, Bounds(gt=0), "x must be a finite number > 0 or none, got inf"),
    (0, float, Bounds(gt=0), "x must be a finite number > 0, got 0"),
    (1.0, float, Bounds(ge=0, lt=1), "x must be a finite number in [0, 1), got 1.0"),
    (2.5, int, None, "x must be an integer, got 2.5"),
    (True, int, None, "x must be an integer, got True"),
    ([1, "a"], tuple[int, ...], None, "x[1] must be an integer, got 'a'"),
    ("tri", typing.Literal["bi", "cross"], None, "x must be one of 'bi', 'cross', got 'tri'"),
    ([0.1], tuple[float, float], None, "x must be a list of 2 values"),
])
def test_a_bad_value_names_the_option_and_what_was_expected(value, annotation, bounds, message):
    with pytest.raises(OptionError) as error:
        convert(value, annotation, "x", bounds)
    assert str(error.value).startswith(message)


def outside(bounds: Bounds) -> float:
    """A value just outside ``bounds`` (below them where they have a lower limit)."""
    if bounds.ge is not None:
        return bounds.ge - 1
    if bounds.gt is not None:
        return bounds.gt
    return bounds.lt if bounds.lt is not None else bounds.le + 1


BOUNDED = [f for f in fields(TrainConfig) if f.metadata["bounds"] is not None]


@pytest.mark.parametrize("f", BOUNDED, ids=[f.name for f in BOUNDED])
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "outside"])
def test_every_numeric_option_refuses_non_finite_and_out_of_range_values(f, bad):
    value = outside(f.metadata["bounds"]) if bad == "outside" else float(bad)
    if f.name == "dropout_schedule":
        value = (0.1, value)
    with pytest.raises(OptionError) as error:
        TrainConfig(**{f.name: value})
    assert error.value.option.split("[")[0] == f.name
    assert str(error.value).startswith(f.name)


def test_settings_that_cannot_train_say_so():
    for kw, message in [
        (dict(max_grad_norm=0.0), "max_grad_norm must be a finite number > 0 or none"),
        (dict(eval_every=0), "eval_every must be an integer >= 1 or none"),
        (dict(tasks=()), "tasks must name one or more distinct tasks"),
        (dict(tasks=("sst", "sst")), "tasks must name one or more distinct tasks"),
        (dict(heads={"cfimdb": {"name": "cosine"}}), "heads names 'cfimdb', not among"),
        (dict(pair_encodings={"sst": "cross"}), "pair_encodings.sst is set, but the task is not"),
        (dict(heads={"sts": {"name": "cosine", "colour": 1}}), "heads.sts has no option 'colour'"),
        (dict(heads={"sts": {"hidden_layers": ["wide"]}}), "heads.sts.hidden_layers[0] must be"),
        (dict(losses={"sst": "mse"}), "losses.sst: loss 'mse' does not fit 'class' labels"),
        (dict(losses={"sts": {"name": "huber", "delta": math.nan}}), "losses.sts.delta must be"),
        (dict(aux_losses={"sts": {"mnrl": {"weight": -1.0}}}), "aux_losses.sts.mnrl: weight"),
        (dict(aux_losses={"sts": {"dropout": {}}}), "aux_losses.sts name must be one of"),
        (dict(pals={"size": 16, "heads": 4}), "pals has no option 'heads'; valid options: "
                                              "size, num_heads, dropout"),
        (dict(pals={"tasks": ["sst", "cfimdb"]}), "pals.tasks names 'cfimdb'"),
        (dict(sampler_options={"task_order": "random"}), "sampler_options: task_order must"),
        (dict(combiner="cagrad", combiner_options={"c": math.inf}), "combiner_options: c must"),
        (dict(device="gpu9"), "device must be auto or a torch device"),
    ]:
        with pytest.raises(OptionError) as error:
            TrainConfig(**kw)
        assert str(error.value).startswith(message), (kw, str(error.value))


def test_python_values_are_read_in_their_plain_or_typed_form():
    base = TrainConfig(heads={"sts": HeadConfig("cosine")}, pair_encodings={"sts": "cross"},
                       dropout_schedule=[0.3, 0.43])
    assert base.heads["sts"] == HeadConfig("cosine", {}) and base.dropout_schedule == (0.3, 0.43)
    with_pals = replace(base, heads={}, pals={"size": 16, "num_heads": 4, "tasks": "sst,sts"})
    assert with_pals.pals == PALConfig(("sst", "sts"), {"size": 16, "num_heads": 4})
    assert replace(with_pals, lr=1e-3).pals == with_pals.pals  # typed values pass through


def test_pal_options_reach_the_layers_by_keyword(tiny_backbone):
    bert, _ = tiny_backbone
    config = TrainConfig(tasks=("sst", "sts"), pals={"size": 16, "num_heads": 4, "tasks": "sts"})
    model = build_model(bert, config)
    assert (model.pals.size, model.pals.num_heads) == (16, 4)
    assert list(model.pals.tasks) == ["sts"]


def the_same_error(tmp_path, capsys, field: str, toml_value: str, python_value, flags):
    """The messages that Python, a TOML recipe and the command line give for one bad value."""
    with pytest.raises(OptionError) as python:
        TrainConfig(**{field: python_value})
    recipe = tmp_path / "bad.toml"
    recipe.write_text(f'name = "bad"\ndescription = "x"\n{field} = {toml_value}\n')
    with pytest.raises(ValueError) as toml:
        load_recipes(recipe)
    capsys.readouterr()
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *flags]) == 2
    return str(python.value), str(toml.value), capsys.readouterr().err


@pytest.mark.parametrize("field, toml_value, python_value, flags", [
    ("lr", "nan", math.nan, ["--lr", "nan"]),
    ("head_lr", "-1.0", -1.0, ["--head-lr", "-1"]),
    ("layer_lr_decay", "1.5", 1.5, ["--layer-lr-decay", "1.5"]),
    ("ema_decay", "1.0", 1.0, ["--ema-decay", "1"]),
    ("max_grad_norm", "-1.0", -1.0, ["--max-grad-norm", "-1"]),
    ("eval_every", "-1", -1, ["--eval-every", "-1"]),
    ("lr_schedule", '"steps"', "steps", ["--lr-schedule", "steps"]),
    ("heads", '{sts = {name = "cosine", scale = inf}}', {"sts": {"name": "cosine",
                                                                  "scale": math.inf}},
     ["--head", "sts=cosine", "--head-opt", "sts.scale=Infinity"]),
])
def test_a_bad_value_gets_the_same_error_from_python_toml_and_the_command_line(
        tmp_path, capsys, field, toml_value, python_value, flags):
    python, toml, cli = the_same_error(tmp_path, capsys, field, toml_value, python_value, flags)
    assert toml == f"{tmp_path / 'bad.toml'}: {python}"
    assert cli == f"error: {flag_of(TrainConfig, python.split()[0])}: {python}\n"


@pytest.mark.parametrize("flags, option", [
    (["--lr", "nan"], "lr"),
    (["--head-lr", "-1"], "head_lr"),
    (["--max-grad-norm", "-1"], "max_grad_norm"),
    (["--max-grad-norm", "0"], "max_grad_norm"),
    (["--max-length", "100000"], "max_length"),
    (["--seed", "-1"], "seed"),
    (["--eval-every", "-1"], "eval_every"),
    (["--checkpoint-every", "-1"], "checkpoint_every"),
])
def test_a_bad_train_flag_stops_before_step_0_with_one_line(
        flags, option, synthetic_dir, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--backbone", "tiny", "--data", str(synthetic_dir), "--out", str(run),
                 "--max-steps", "1", "--no-progress", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {flags[0]}: {option} must be")
    assert not (run / "log.jsonl").exists()


def test_the_command_prints_no_traceback_for_a_bad_option(synthetic_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO),
                                                       os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "mtl_tutor.cli", "train", "--backbone", "tiny", "--data",
         str(synthetic_dir), "--out", str(tmp_path / "run"), "--max-length", "100000"],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr == ("error: --max-length: max_length must be <= 128, the position "
                           "embeddings of backbone 'tiny', got 100000\n")


def test_max_length_is_checked_against_the_backbone_before_step_0(synthetic_dir, tmp_path):
    config = TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"),
                         max_length=129, max_steps=1, progress=False)
    with pytest.raises(OptionError, match="max_length must be <= 128"):
        train(config)
    assert not (tmp_path / "run" / "log.jsonl").exists()


def parse_train(argv):
    return build_parser().parse_args(["train", *argv])


def test_every_config_field_has_a_train_flag():
    usage = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for f in fields(TrainConfig):
        assert flag_of(TrainConfig, f.name) in usage, f.name


def test_flags_not_given_keep_the_config_defaults():
    assert config_from_args(parse_train([])) == TrainConfig()


def test_the_flags_of_a_run_before_typed_options_give_its_run_config():
    # The command line recorded in the fixture's README, through today's generated flags.
    argv = ("--backbone tiny --data DATA --out OUT --combiner gradvac --combiner-opt beta=0.5 "
            "--sampler round-robin --sampler-opt task_order=shuffled --head sts=cosine "
            "--head-opt quora.hidden_layers=[16] --loss sts=huber --loss-opt sts.delta=0.5 "
            "--aux-loss quora=mnrl --aux-loss-opt quora.mnrl.weight=0.5 --pals "
            "--pals-opt size=16 --pals-opt num_heads=4 --pals-opt tasks=sst,sts "
            "--dropout-schedule 0.1 0.2 --max-steps 3 --eval-every 2 --batch-size 8 "
            "--max-length 32 --epochs 1 --seed 1 --no-progress").split()
    recorded = json.loads((FIXTURES / "gradvac" / "run_config.json").read_text())
    config = config_from_args(parse_train(argv)).to_dict()
    expected = {**TrainConfig().to_dict(), **recorded}  # fields added since: their defaults
    assert {**config, "data": recorded["data"], "out": recorded["out"]} == expected


@pytest.mark.parametrize("run", ["gradvac", "sum"])
def test_a_run_config_written_before_options_were_typed_loads(run):
    recorded = json.loads((FIXTURES / run / "run_config.json").read_text())
    config = TrainConfig.load(FIXTURES / run / "run_config.json")
    losses = {t: {"name": v} if isinstance(v, str) else v for t, v in recorded["losses"].items()}
    # a bare loss name gains its key; fields added since take their defaults
    assert config.to_dict() == {**TrainConfig().to_dict(), **recorded, "losses": losses}
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_a_damaged_run_config_names_the_file_and_the_option(tmp_path):
    path = tmp_path / "run_config.json"
    path.write_text(json.dumps({"lr": -1.0}))
    with pytest.raises(OptionError, match=f"{path}: lr must be a finite number > 0"):
        TrainConfig.load(path)
    path.write_text(json.dumps({"learning_rate": 0.1}))
    with pytest.raises(OptionError, match="'learning_rate' is not an option; valid options: "):
        TrainConfig.load(path)
    path.write_text("{")
    with pytest.raises(ValueError, match=f"{path} is damaged: not valid JSON"):
        TrainConfig.load(path)
