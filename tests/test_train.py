"""The trainer on the tiny backbone and the synthetic corpus."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from mtl_tutor.checkpoint import load_training_state
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
    with pytest.raises(TrainingDiverged, match="step 0: the loss of task sts") as diverged:
        train(config(synthetic_dir, tmp_path, combiner="pcgrad"))
    saved = load_file(tmp_path / "run" / "last_good.safetensors")
    assert all(torch.isfinite(t).all() for t in saved.values())
    assert f"all {len(saved)} tensors finite" in str(diverged.value)
    assert "learning rates are not the cause" in str(diverged.value)  # no update was made yet


def nan_loss_from(monkeypatch, call: int, task: str = "sts"):
    """Make ``task``'s loss NaN from its ``call``-th computation on."""
    original, calls = MultitaskModel.loss, []

    def loss(self, batch):
        value = original(self, batch)
        if batch.task == task:
            calls.append(1)
            return value * float("nan") if len(calls) >= call else value
        return value

    monkeypatch.setattr(MultitaskModel, "loss", loss)


@pytest.mark.parametrize("settings, advised, not_advised", [
    (dict(lr=1e-3), ["a lower --lr (it is 0.001"], ["--head-lr", "--max-grad-norm"]),
    (dict(max_grad_norm=None), ["clipping the gradient's norm (--max-grad-norm 1.0)"],
     ["--lr", "--head-lr"]),
    (dict(head_lr=0.5), ["a lower --head-lr (it is 0.5)"], ["a lower --lr"]),
    (dict(combiner="cagrad", combiner_options={"c": 0.4}),
     ["learning rates are small", "task sts's loss", "combiner 'cagrad' with options {'c': 0.4}"],
     ["Try"]),
])
def test_divergence_advice_fits_the_settings(settings, advised, not_advised, synthetic_dir,
                                             tmp_path, monkeypatch):
    nan_loss_from(monkeypatch, call=3)  # the third step's STS loss
    with pytest.raises(TrainingDiverged, match="^step 2: the loss of task sts is NaN") as error:
        train(config(synthetic_dir, tmp_path, **settings))
    message = str(error.value)
    assert all(text in message for text in advised), message
    assert not any(text in message for text in not_advised), message


def poison(monkeypatch, name: str, value: float, after_step: int):
    """Set element 0 of the model's tensor ``name`` to ``value`` in the update of step
    ``after_step`` (0-based)."""
    original, steps = MultitaskModel.after_optimizer_step, []

    def after_optimizer_step(self):
        original(self)
        steps.append(1)
        if len(steps) == after_step + 1:
            with torch.no_grad():
                self.state_dict()[name].view(-1)[0] = value

    monkeypatch.setattr(MultitaskModel, "after_optimizer_step", after_optimizer_step)


@pytest.mark.parametrize("value, problem", [(float("nan"), "1 of its 49 tensors hold NaN"),
                                            (3e38, "its outputs are not finite")])
def test_a_model_that_is_not_finite_is_never_saved_as_good(value, problem, synthetic_dir,
                                                          tmp_path, monkeypatch):
    poison(monkeypatch, "bert.embeddings.LayerNorm.weight", value, after_step=1)
    with pytest.raises(TrainingDiverged) as error:
        train(config(synthetic_dir, tmp_path, max_steps=4, eval_every=1))
    message, run = str(error.value), tmp_path / "run"
    assert message.startswith("step 1: an output on the dev set of task sst is NaN")
    assert f"The model after step 1 was not saved: {problem}" in message
    assert f"the state after 1 steps is in {run / 'checkpoint.pt'}" in message
    assert f"after 1 steps) is in {run / 'model.safetensors'}" in message
    assert not (run / "last_good.safetensors").exists()
    assert load_training_state(run)["step"] == 1  # the last finite state


def test_a_checkpoint_never_holds_a_weight_that_is_not_finite(synthetic_dir, tmp_path,
                                                              monkeypatch):
    poison(monkeypatch, "bert.pooler.dense.bias", float("inf"), after_step=0)
    with pytest.raises(TrainingDiverged, match="^step 0: a weight after the update of tasks "
                                               "sst/quora/sts is NaN or infinite"):
        train(config(synthetic_dir, tmp_path, checkpoint_every=1, eval_every=10))
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


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
