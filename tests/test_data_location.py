"""Where the data is found: ``--data``, else ``$MTL_TUTOR_DATA``, else the user's data directory;
when there is none, the error says the one command that fetches it."""

import json
import sys

import pytest

from mtl_tutor.cli import main
from mtl_tutor.data import DATA_ENV, DataNotFoundError, data_home, locate_data


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG data directory: Linux")
def test_the_default_is_the_user_data_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert data_home() == tmp_path / "mtl-tutor" / "cs224n"


def test_the_environment_variable_overrides_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "mine"))
    assert data_home() == tmp_path / "mine"


def test_locate_prefers_the_flag_then_finds_complete_data(monkeypatch, synthetic_dir, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(synthetic_dir))
    assert locate_data(tmp_path / "given") == tmp_path / "given"
    assert locate_data(None) == synthetic_dir
    assert locate_data("", ["sst"], ["test"]) == synthetic_dir
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(DataNotFoundError) as error:
        locate_data(None)
    message = str(error.value)
    assert str(tmp_path) in message and "$MTL_TUTOR_DATA" in message
    assert "sst-train.csv or ids-sst-train.csv and 5 more" in message
    assert message.endswith("fetch it with: mtl-tutor data download")


def test_train_eval_and_predict_find_the_data_without_data_flag(monkeypatch, synthetic_dir,
                                                                tmp_path, capsys):
    monkeypatch.setenv(DATA_ENV, str(synthetic_dir))
    run = tmp_path / "run"
    assert main(["train", "--backbone", "tiny", "--out", str(run), "--max-steps", "1",
                 "--batch-size", "8", "--no-progress"]) == 0
    assert json.loads((run / "run_config.json").read_text())["data"] == str(synthetic_dir)
    capsys.readouterr()
    assert main(["eval", "--run", str(run)]) == 0
    assert "overall" in json.loads(capsys.readouterr().out)
    assert main(["predict", "--run", str(run), "--split", "test", "--out",
                 str(tmp_path / "pred")]) == 0
    assert (tmp_path / "pred" / "sts-test-output.csv").exists()


@pytest.mark.parametrize("command", [
    ["train", "--backbone", "tiny", "--out", "RUN", "--no-progress"],
    ["leaderboard", "--configs", "configs", "--out", "RUN"],
])
def test_without_data_the_error_is_one_line_with_the_download_command(monkeypatch, tmp_path,
                                                                      capsys, command):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "empty"))
    assert main([str(tmp_path / "run") if c == "RUN" else c for c in command]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no CS224N data in") and "\n" not in err
    assert err.endswith("fetch it with: mtl-tutor data download")
    assert not (tmp_path / "run").exists()


def test_data_path_prints_where_the_data_is(monkeypatch, synthetic_dir, tmp_path, capsys):
    monkeypatch.setenv(DATA_ENV, str(synthetic_dir))
    assert main(["data", "path"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{synthetic_dir}\n" and captured.err == ""
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert main(["data", "path"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{tmp_path}\n" and "mtl-tutor data download" in captured.err
