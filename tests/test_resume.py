"""A run interrupted by a signal and resumed equals an uninterrupted run, bit for bit on CPU."""

import json
import os
import signal

import pytest
import torch

from mtl_tutor.checkpoint import load_training_state
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import TrainingInterrupted, train


def config(synthetic_dir, out, combiner):
    return TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(out), epochs=2,
                       max_steps=6, batch_size=16, max_length=32, combiner=combiner,
                       eval_every=3, progress=False)


class SignalAt:
    def __init__(self, step, signum):
        self.step, self.signum = step, signum

    def on_step(self, record):
        if record.step == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("combiner, signum", [("pcgrad", signal.SIGINT),
                                               ("gradattention", signal.SIGTERM)])
def test_interrupted_and_resumed_run_equals_uninterrupted(synthetic_dir, tmp_path, combiner,
                                                          signum):
    straight = train(config(synthetic_dir, tmp_path / "straight", combiner))
    with pytest.raises(TrainingInterrupted, match="after step 2"):
        train(config(synthetic_dir, tmp_path / "cut", combiner), callbacks=[SignalAt(1, signum)])
    assert load_training_state(tmp_path / "cut")["step"] == 2
    resumed = train(config(synthetic_dir, tmp_path / "cut", combiner), resume=True)

    a = load_training_state(tmp_path / "straight")
    b = load_training_state(tmp_path / "cut")
    assert a["step"] == b["step"] == 6
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert straight["best"] == resumed["best"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "log.jsonl").open()]
    assert steps == list(range(6))


def test_resume_without_a_checkpoint_is_a_clear_error(synthetic_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        train(config(synthetic_dir, tmp_path / "none", "sum"), resume=True)


def test_the_signal_handlers_are_restored_after_training(synthetic_dir, tmp_path):
    before = signal.getsignal(signal.SIGINT)
    train(config(synthetic_dir, tmp_path / "r", "sum"))
    assert signal.getsignal(signal.SIGINT) is before


def test_resume_refuses_a_run_config_whose_method_changed(synthetic_dir, tmp_path):
    with pytest.raises(TrainingInterrupted):
        train(config(synthetic_dir, tmp_path / "cut", "pcgrad"),
              callbacks=[SignalAt(0, signal.SIGINT)])
    path = tmp_path / "cut" / "run_config.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "combiner": "sum", "lr": 1e-3}))
    checkpoint = (tmp_path / "cut" / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match="combiner is 'sum' there but 'pcgrad' in the "
                                         "checkpoint; lr is 0.001 there but 5e-05"):
        train(TrainConfig.load(path), resume=True)
    assert (tmp_path / "cut" / "checkpoint.pt").read_bytes() == checkpoint  # nothing trained
    path.write_text(json.dumps({**saved, "progress": False, "eval_every": 2}))
    summary = train(TrainConfig.load(path), resume=True)  # how a run executes may change
    assert summary["steps"] == 6
