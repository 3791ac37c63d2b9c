"""train, eval and predict on a folder of the public release's file names; predictions for the
unlabelled ``*-test-student.csv`` inputs in the files and format the CS224N starter code writes."""

import json

import pytest

from mtl_tutor.cli import PREDICTION_FILES, main, prediction_text
from mtl_tutor.data import load_task
from mtl_tutor.data.subset import write_sample

PUBLIC_SAMPLE = {"ids-sst-train.csv": 120, "ids-sst-dev.csv": 40,
                 "ids-sst-test-student.csv": 50, "sts-train.csv": 120, "sts-dev.csv": 40,
                 "sts-test-student.csv": 50}


@pytest.fixture(scope="module")
def public_sample(public_data_dir, tmp_path_factory):
    """A few rows of each SST and STS file of the release, under the release's names."""
    folder = tmp_path_factory.mktemp("public")
    for name, rows in PUBLIC_SAMPLE.items():
        write_sample(public_data_dir / name, folder / name, rows, seed=0)
    return folder


@pytest.fixture(scope="module")
def public_run(public_sample, tmp_path_factory):
    run = tmp_path_factory.mktemp("public-run") / "run"
    assert main(["train", "--data", str(public_sample), "--tasks", "sst,sts", "--backbone",
                 "tiny", "--max-steps", "2", "--batch-size", "8", "--out", str(run),
                 "--no-progress"]) == 0
    return run


def test_train_reads_the_public_names(public_run):
    config = json.loads((public_run / "run_config.json").read_text())
    assert config["tasks"] == ["sst", "sts"]
    best = json.loads((public_run / "eval.jsonl").read_text().splitlines()[-1])
    assert set(best) >= {"sst_acc", "sts_pearson"}


def test_predict_writes_the_starter_code_files_for_the_test_student_inputs(
        public_run, public_sample, tmp_path, capsys):
    assert main(["predict", "--run", str(public_run), "--data", str(public_sample),
                 "--split", "test", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sst-test-output.csv",
                                                          "sts-test-output.csv"]
    for task, classes in (("sst", range(5)), ("sts", None)):
        lines = (tmp_path / f"{task}-test-output.csv").read_text().splitlines()
        assert lines[0] == f"id \t {PREDICTION_FILES[task][1]} "
        ids = [e.id for e in load_task(public_sample, task, "test").examples]
        assert [line.split(" , ")[0] for line in lines[1:]] == ids and len(ids) == 50
        values = [line.split(" , ")[1].rstrip() for line in lines[1:]]
        if classes is not None:
            assert all(int(v) in classes for v in values)
        else:
            assert all(0.0 <= float(v) <= 5.0 for v in values)
    assert "sts-test-output.csv (50 rows)" in capsys.readouterr().out


def test_eval_on_the_unlabelled_test_split_says_so_in_one_line(public_run, public_sample,
                                                               capsys):
    assert main(["eval", "--run", str(public_run), "--data", str(public_sample),
                 "--split", "test"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the test split has no labels") and "\n" not in err
    assert main(["eval", "--run", str(public_run), "--data", str(public_sample)]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"sst_acc", "sts_pearson"}


def test_prediction_values_are_written_as_the_starter_code_writes_them():
    """Its test_model_multitask writes numpy values: an argmax index for SST, a rounded
    sigmoid (a float, ``1.0``) for Quora and the raw score for STS."""
    assert PREDICTION_FILES["sts"][1] == "Predicted_Similiary"
    assert prediction_text("sst", 3.0) == "3"
    assert prediction_text("quora", 1) == "1.0"
    assert prediction_text("sts", 2.5) == "2.5"
