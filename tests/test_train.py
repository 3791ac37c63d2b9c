"""The trainer on the tiny backbone and the synthetic corpus."""

import json
import math

import pytest
import torch

from mtl_tutor.combiners import COMBINER_NAMES
from mtl_tutor.model import MultitaskModel
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.schedules import warmup_linear_decay
from mtl_tutor.train import TrainingDiverged, train


def config(synthetic_dir, tmp_path, **kw):
    base = dict(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"), epochs=1,
                max_steps=3, batch_size=8, max_length=32, eval_batch_size=32, progress=False)
    return TrainConfig(**{**base, **kw})


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_pcgrad_run_writes_a_complete_run_directory(synthetic_dir, tmp_path):
    summary = train(config(synthetic_dir, tmp_path, combiner="pcgrad"))
    run = tmp_path / "run"
    for name in ("model.safetensors", "run_config.json", "bert_config.json", "heads.json",
                 "tokenizer", "log.jsonl", "eval.jsonl"):
        assert (run / name).exists(), name
    log = read_jsonl(run / "log.jsonl")
    assert [r["step"] for r in log] == [0, 1, 2]
    record = log[0]
    assert set(record["losses"]) == {"sst", "quora", "sts"}
    assert set(record["cosines"]) == {"sst/quora", "sst/sts", "quora/sts"}
    assert set(record["layer_cosines"]) == {"embeddings", "layer.0", "layer.1", "pooler"}
    assert isinstance(record["conflict"], bool) and record["changed"] >= 0
    best = summary["best"]
    expected = (best["sst_acc"] + best["para_acc"] + (best["sts_pearson"] + 1) / 2) / 3
    assert best["overall"] == pytest.approx(expected)


@pytest.mark.parametrize("name", COMBINER_NAMES)
def test_every_combiner_trains_to_a_finite_loss(name, synthetic_dir, tmp_path):
    summary = train(config(synthetic_dir, tmp_path, combiner=name, max_steps=2))
    log = read_jsonl(tmp_path / "run" / "log.jsonl")
    assert all(math.isfinite(v) for r in log for v in r["losses"].values())
    assert math.isfinite(summary["best"]["overall"])


def test_training_reduces_the_loss(synthetic_dir, tmp_path):
    train(config(synthetic_dir, tmp_path, epochs=3, max_steps=None, lr=1e-3))
    log = read_jsonl(tmp_path / "run" / "log.jsonl")
    first = sum(log[0]["losses"].values())
    last = sum(sum(r["losses"].values()) for r in log[-3:]) / 3
    assert last < first


def test_a_nan_loss_stops_the_run_naming_step_and_task(synthetic_dir, tmp_path, monkeypatch):
    original = MultitaskModel.loss

    def loss(self, batch):
        value = original(self, batch)
        return value * float("nan") if batch.task == "sts" else value

    monkeypatch.setattr(MultitaskModel, "loss", loss)
    with pytest.raises(TrainingDiverged, match="step 0.*task sts"), pytest.warns(UserWarning):
        train(config(synthetic_dir, tmp_path, combiner="pcgrad"))
    assert (tmp_path / "run" / "last_good.safetensors").exists()


def test_learning_rate_warms_up_then_decays_to_zero():
    factor = warmup_linear_decay(4, 10)
    values = [factor(s) for s in range(10)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]
    assert values[4] == 1.0 and values[-1] == pytest.approx(1 / 6)
    assert all(a >= b for a, b in zip(values[3:], values[4:]))


def test_config_rejects_bad_values_naming_them():
    for kw, name in ((dict(epochs=0), "epochs"), (dict(lr=0.0), "lr"),
                     (dict(pair_encoding="tri"), "pair_encoding"),
                     (dict(warmup_fraction=1.0), "warmup_fraction")):
        with pytest.raises(ValueError, match=name):
            TrainConfig(**kw)


def test_callbacks_see_every_step_and_eval(synthetic_dir, tmp_path):
    class Recorder:
        def __init__(self):
            self.steps, self.evals, self.ended = [], [], False

        def on_step(self, record):
            self.steps.append(record.step)

        def on_eval(self, metrics):
            self.evals.append(metrics)

        def on_train_end(self, summary):
            self.ended = True

    recorder = Recorder()
    train(config(synthetic_dir, tmp_path, max_steps=4, eval_every=2), callbacks=[recorder])
    assert recorder.steps == [0, 1, 2, 3]
    assert [m.step for m in recorder.evals] == [2, 4]
    assert recorder.ended
    assert torch.is_grad_enabled()
