"""A run never destroys a run: a new run refuses a directory that holds anything, a refused run
leaves nothing behind, a run continues where it is (a copy writes only into the copy), stale
temporary files go, and a directory that cannot be written stops the run with what was saved."""

import errno
import os
import shutil
import signal
from pathlib import Path

import pytest

import mtl_tutor.training_hooks as hooks
import mtl_tutor.training_run as training_run
from mtl_tutor.checkpoint import load_training_state
from mtl_tutor.cli import main
from mtl_tutor.combiners import COMBINER_NAMES, get_combiner
from mtl_tutor.options import OptionError
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.run_directory import (
    RunDirectoryError,
    check_new_run_directory,
    make_run_directory,
    remove_stale_temporaries,
)
from mtl_tutor.train import TrainingInterrupted, train

TRAIN = ["train", "--backbone", "tiny", "--max-steps", "4", "--batch-size", "8",
         "--max-length", "32", "--eval-every", "2", "--no-progress"]


def config(synthetic_dir, out, **kw) -> TrainConfig:
    base = dict(backbone="tiny", data=str(synthetic_dir), out=str(out), epochs=1, max_steps=4,
                batch_size=8, max_length=32, eval_batch_size=32, eval_every=2, progress=False)
    return TrainConfig(**{**base, **kw})


def files(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` by relative path, with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


class SignalAt:
    """A callback that sends this process SIGINT after step ``step``."""

    def __init__(self, step: int):
        self.step = step

    def on_step(self, record):
        if record.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def interrupted_run(synthetic_dir, tmp_path) -> Path:
    """A run stopped by SIGINT after its second step (its checkpoint: step 2 of 4)."""
    out = tmp_path / "runs" / "original"
    with pytest.raises(TrainingInterrupted):
        train(config(synthetic_dir, out.absolute()), callbacks=[SignalAt(1)])
    assert load_training_state(out)["step"] == 2
    return out


def test_training_twice_into_the_same_out_refuses_and_leaves_the_first_run_as_it_was(
        synthetic_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--data", str(synthetic_dir), "--out", str(out)]) == 0
    before = files(out)
    capsys.readouterr()
    assert main([*TRAIN, "--data", str(synthetic_dir), "--out", str(out), "--seed", "3"]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--resume {out}" in err and "another --out" in err
    assert files(out) == before


def test_overwrite_replaces_an_earlier_run_and_nothing_else(synthetic_dir, tmp_path):
    out = tmp_path / "run"
    train(config(synthetic_dir, out, max_steps=2))
    (out / "last_good.safetensors").write_bytes(b"from the earlier run")
    summary = train(config(synthetic_dir, out, max_steps=1), overwrite=True)
    assert summary["steps"] == 1 and not (out / "last_good.safetensors").exists()
    assert TrainConfig.load(out / "run_config.json").max_steps == 1

    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="holds no run"):
        train(config(synthetic_dir, other), overwrite=True)
    assert files(other) == {"notes.txt": b"mine"}


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_out_that_is_a_file_is_refused_before_anything_is_read(where, synthetic_dir,
                                                                   tmp_path, monkeypatch):
    monkeypatch.setattr("mtl_tutor.train.build_run", lambda config: pytest.fail("built"))
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" if where == "a file" else tmp_path / "file" / "run"
    with pytest.raises(RunDirectoryError, match="is a file"):
        train(config(synthetic_dir, out))
    assert (tmp_path / "file").read_text() == "x"


def test_an_unwritable_parent_is_refused(tmp_path, monkeypatch):
    parent = tmp_path / "locked"
    parent.mkdir()
    writable = os.access
    monkeypatch.setattr("mtl_tutor.run_directory.os.access",  # as without write permission
                        lambda path, mode: Path(path) != parent and writable(path, mode))
    with pytest.raises(RunDirectoryError, match=f"cannot make run directory {parent / 'run'}: "
                                                f"{parent} is not writable"):
        check_new_run_directory(parent / "run")


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     KeyboardInterrupt()])
def test_a_start_that_fails_while_writing_removes_what_it_made(failure, tmp_path):
    def write(path):
        (path / "run_config.json").write_text("{}")
        raise failure

    expected = RunDirectoryError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected):
        make_run_directory(tmp_path / "a" / "b" / "run", write)
    assert list(tmp_path.iterdir()) == []  # the parents it made went too
    (tmp_path / "empty").mkdir()
    with pytest.raises(expected):
        make_run_directory(tmp_path / "empty", write)
    assert list((tmp_path / "empty").iterdir()) == []  # a directory it did not make stays


def needs_every_task() -> str:
    return next(n for n in COMBINER_NAMES if get_combiner(n).needs_every_task)


@pytest.mark.parametrize("change, error", [
    (dict(max_length=129), OptionError),
    (dict(device="cuda:9"), OptionError),
    (dict(sampler="sequential", combiner=needs_every_task()), ValueError),
    (dict(data="no such folder"), ValueError),
])
def test_a_refused_run_leaves_no_directory_behind(change, error, synthetic_dir, tmp_path):
    out = tmp_path / "runs" / "run"
    with pytest.raises(error):
        train(config(synthetic_dir, out, **change))
    assert not (tmp_path / "runs").exists()


def test_resuming_a_copy_from_elsewhere_writes_only_into_the_copy(interrupted_run, tmp_path,
                                                                  monkeypatch, capsys):
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(interrupted_run, copy)
    original = files(interrupted_run)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    assert main(["train", "--resume", os.path.relpath(copy)]) == 0
    assert files(interrupted_run) == original
    assert load_training_state(copy)["step"] == 4
    assert f'"run": "{os.path.relpath(copy)}"' in capsys.readouterr().out
    assert not list((tmp_path / "cwd").iterdir())


def test_stale_temporary_files_are_removed_when_a_run_continues(interrupted_run):
    stale = [interrupted_run / ".checkpoint.pt.k3j2h1.tmp",
             interrupted_run / ".model.safetensors.a8b7c6.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    (interrupted_run / "notes.tmp").write_text("mine")
    train(TrainConfig.of_run(interrupted_run), resume=True)
    assert not any(path.exists() for path in stale)
    assert (interrupted_run / "notes.tmp").read_text() == "mine"
    assert remove_stale_temporaries(interrupted_run) == []


def test_the_config_of_a_moved_run_addresses_the_run_where_it_is(interrupted_run, tmp_path):
    moved = Path(shutil.move(interrupted_run, tmp_path / "moved"))
    config = TrainConfig.of_run(moved, device="cpu", progress=True)
    assert config.out == str(moved) and config.device == "cpu" and config.progress
    with pytest.raises(ValueError, match="^out, lr: a run continues with the settings"):
        TrainConfig.of_run(moved, lr=1e-3, out="elsewhere")
    with pytest.raises(FileNotFoundError, match="no run_config.json"):
        TrainConfig.of_run(tmp_path)


def test_resume_takes_how_a_run_executes_but_refuses_what_it_trains(interrupted_run, capsys):
    assert main(["train", "--resume", str(interrupted_run), "--epochs", "5", "--lr", "1e-3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--epochs, --lr cannot be given with it" in err
    assert main(["train", "--resume", str(interrupted_run), "--overwrite"]) == 2
    assert main(["train", "--resume", str(interrupted_run), "--device", "cpu",
                 "--checkpoint-every", "1"]) == 0
    assert load_training_state(interrupted_run)["step"] == 4


def test_a_run_directory_that_cannot_be_written_stops_with_what_was_saved(
        synthetic_dir, tmp_path, monkeypatch, capsys):
    save = hooks.save_training_state
    calls = []

    def refuse_the_second(run_dir, state):
        calls.append(state["step"])
        if len(calls) == 2:
            raise PermissionError(errno.EACCES, "Permission denied",
                                  str(run_dir / "checkpoint.pt"))
        save(run_dir, state)

    monkeypatch.setattr(hooks, "save_training_state", refuse_the_second)
    out = tmp_path / "run"
    assert main([*TRAIN, "--data", str(synthetic_dir), "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot write {out / 'checkpoint.pt'} (Permission denied)" in err
    assert f"the state after 2 steps is in {out / 'checkpoint.pt'}" in err
    assert load_training_state(out)["step"] == 2


def test_an_interrupt_during_start_up_writes_nothing(synthetic_dir, tmp_path, monkeypatch,
                                                     capsys):
    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr("mtl_tutor.train.build_run", interrupted)
    out = tmp_path / "run"
    assert main([*TRAIN, "--data", str(synthetic_dir), "--out", str(out)]) == 130
    assert capsys.readouterr().err == ("error: interrupted before training started; nothing "
                                       "was written\n")
    assert not out.exists()


def test_device_names_what_this_machine_has():
    assert training_run.resolve_device("cpu").type == "cpu"
    with pytest.raises(OptionError, match="device is 'cuda:9', but this machine has"):
        training_run.resolve_device("cuda:9")
