"""The mtl-tutor command line: train, eval and predict on the tiny backbone."""

import json
import shutil

import pytest

from mtl_tutor.cli import build_parser, main
from mtl_tutor.cli_arguments import parse_options
from mtl_tutor.data import DataWarning


@pytest.fixture(scope="module")
def trained_run(synthetic_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", "--backbone", "tiny", "--data", str(synthetic_dir), "--out", str(run),
                 "--combiner", "pcgrad", "--epochs", "1", "--max-steps", "2", "--batch-size", "8",
                 "--seed", "1", "--no-progress"])
    assert code == 0
    return run


def test_train_records_the_command_line_in_the_run_config(trained_run):
    config = json.loads((trained_run / "run_config.json").read_text())
    assert config["combiner"] == "pcgrad" and config["max_steps"] == 2 and config["seed"] == 1
    assert config["backbone"] == "tiny" and config["batch_size"] == 8


def test_eval_prints_one_json_object_with_the_overall_score(trained_run, synthetic_dir, capsys):
    capsys.readouterr()
    assert main(["eval", "--run", str(trained_run), "--data", str(synthetic_dir)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == {"sst_acc", "para_acc", "sts_pearson", "overall"}
    overall = (metrics["sst_acc"] + metrics["para_acc"] + (metrics["sts_pearson"] + 1) / 2) / 3
    assert metrics["overall"] == pytest.approx(overall)
    best = json.loads((trained_run / "eval.jsonl").read_text().splitlines()[-1])
    assert metrics["overall"] == pytest.approx(best["overall"], abs=1e-6)


def test_predict_writes_cs224n_files_in_input_order(trained_run, synthetic_dir, tmp_path):
    assert main(["predict", "--run", str(trained_run), "--data", str(synthetic_dir),
                 "--split", "test", "--out", str(tmp_path)]) == 0
    lines = (tmp_path / "sst-test-output.csv").read_text().splitlines()
    assert lines[0] == "id \t Predicted_Sentiment "
    ids = [line.split("\t")[1] for line in
           (synthetic_dir / "sst-test.csv").read_text().splitlines()[1:]]
    assert [line.split(" , ")[0] for line in lines[1:]] == ids
    assert all(int(line.split(" , ")[1]) in range(5) for line in lines[1:])
    sts = (tmp_path / "sts-test-output.csv").read_text().splitlines()
    assert sts[0] == "id \t Predicted_Similiary "
    assert all(0.0 <= float(line.split(" , ")[1]) <= 5.0 for line in sts[1:])
    assert (tmp_path / "para-test-output.csv").exists()


def predictions(path):
    """(id, prediction) of each row of a prediction file."""
    return [tuple(line.split(" , ")) for line in path.read_text().splitlines()[1:]]


def test_predict_gives_each_row_its_own_prediction_when_ids_repeat(trained_run, synthetic_dir,
                                                                   tmp_path):
    data = shutil.copytree(synthetic_dir, tmp_path / "data")
    argv = ["predict", "--run", str(trained_run), "--data", str(data), "--split", "dev"]
    assert main([*argv, "--out", str(tmp_path / "unique")]) == 0
    unique = predictions(tmp_path / "unique" / "sts-dev-output.csv")
    assert unique[0][1] != unique[1][1]

    lines = (data / "sts-dev.csv").read_text().splitlines(keepends=True)
    second = lines[2].split("\t")
    second[1] = lines[1].split("\t")[1]  # the second row takes the first row's id
    lines[2] = "\t".join(second)
    (data / "sts-dev.csv").write_text("".join(lines))
    with pytest.warns(DataWarning, match="repeat an earlier row's id"):
        assert main([*argv, "--out", str(tmp_path / "repeated")]) == 0
    repeated = predictions(tmp_path / "repeated" / "sts-dev-output.csv")
    assert repeated[0][0] == repeated[1][0]
    assert [value for _, value in repeated] == [value for _, value in unique]


def test_a_missing_data_directory_is_a_clear_error(tmp_path, capsys):
    code = main(["train", "--backbone", "tiny", "--data", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 3  # a file or folder to read
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_options_are_parsed_as_json_when_they_can_be():
    assert parse_options(["c=0.4", "mode=subset", "sizes=[1,2]"], "--x") == {
        "c": 0.4, "mode": "subset", "sizes": [1, 2]}
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_options(["novalue"], "--combiner-opt")


def test_unknown_combiner_option_names_the_valid_ones(synthetic_dir, tmp_path, capsys):
    code = main(["train", "--backbone", "tiny", "--data", str(synthetic_dir), "--out",
                 str(tmp_path / "r"), "--combiner", "pcgrad", "--combiner-opt", "bogus=1",
                 "--no-progress"])
    assert code == 2
    assert "bogus" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "eval", "predict", "demo", "data"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([command, "--help"])
    assert exit_.value.code == 0
    assert "usage" in capsys.readouterr().out
