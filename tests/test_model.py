"""The multitask model's knobs: losses by name, dropout schedule, gradient accumulation, backbone
freezing and the cosine learning-rate schedule, in the model and through train()."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from mtl_tutor import load_backbone
from mtl_tutor.data import load_task
from mtl_tutor.data.batching import collate
from mtl_tutor.data.tasks import get_task
from mtl_tutor.gradients import TaskGradients
from mtl_tutor.model import MultitaskModel, build_model, linear_dropout
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.schedules import warmup_cosine_decay
from mtl_tutor.train import train


def test_losses_are_chosen_per_task_by_name(tiny_backbone, synthetic_dir):
    bert, tokenizer = tiny_backbone
    model = MultitaskModel(bert, {"sts": get_task("sts")},
                           losses={"sts": {"name": "huber", "delta": 0.5}}).eval()
    batch = collate(load_task(synthetic_dir, "sts", "train").examples[:8], get_task("sts"),
                    tokenizer)
    r = model(batch) - batch.labels
    expected = torch.where(r.abs() <= 0.5, r ** 2 / 2, 0.5 * (r.abs() - 0.25)).mean()
    assert model.loss(batch).item() == pytest.approx(expected.item(), 1e-5)
    with pytest.raises(ValueError, match="not in"):
        MultitaskModel(bert, {"sts": get_task("sts")}, losses={"sst": "mse"})
    with pytest.raises(ValueError, match="needs a bi-encoded pair"):
        MultitaskModel(bert, {"sts": get_task("sts")}, pair_encodings={"sts": "cross"},
                       aux_losses={"sts": {"mnrl": {}}})
    with pytest.raises(ValueError, match="valid"):
        MultitaskModel(bert, {"sts": get_task("sts")}, aux_losses={"sts": {"dropout": {}}})


def test_dropout_schedule_is_linear_over_epochs_and_sets_every_dropout(tiny_backbone):
    assert [linear_dropout(0.3, 0.43, e, 3) for e in range(3)] == pytest.approx(
        [0.3, 0.365, 0.43])
    assert linear_dropout(0.3, 0.43, 0, 1) == 0.3
    bert, _ = load_backbone("tiny", seed=0)
    model = MultitaskModel(bert, {"sst": get_task("sst")})
    model.start_epoch(2, dropout=0.25)
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert model.epoch == 2 and len(dropouts) > 3 and all(m.p == 0.25 for m in dropouts)


def test_head_dropout_fixes_the_heads_dropout_alone(tiny_backbone):
    bert, _ = load_backbone("tiny", seed=0)
    model = build_model(bert, TrainConfig(backbone="tiny", head_dropout=0.43,
                                          heads={"sts": {"name": "cosine"}}))

    def ps(module):
        return {m.p for m in module.modules() if isinstance(m, torch.nn.Dropout)}

    assert ps(model.heads) == {0.43} and ps(model.bert) == {0.1}  # the cosine head has none
    model.start_epoch(1, dropout=0.2)  # a dropout schedule moves the backbone only
    assert ps(model.heads) == {0.43} and ps(model.bert) == {0.2}
    with pytest.raises(ValueError, match="head_dropout"):
        TrainConfig(head_dropout=1.0)


def test_cosine_schedule_warms_up_then_follows_half_a_cosine_to_zero():
    factor = warmup_cosine_decay(2, 10)
    assert [factor(s) for s in range(3)] == pytest.approx([0.5, 1.0, 1.0])
    assert factor(6) == pytest.approx(0.5)  # halfway through the decay
    assert factor(10) == pytest.approx(0.0, abs=1e-12)
    values = [factor(s) for s in range(2, 11)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("task", ["sst", "sts"])
def test_two_micro_batches_accumulate_to_the_gradient_of_one_double_batch(
        task, tiny_backbone, synthetic_dir):
    bert, tokenizer = tiny_backbone
    model = MultitaskModel(bert, {task: get_task(task)}).eval()  # deterministic: no dropout
    grads = TaskGradients(model.shared_parameters(), 2)
    examples = load_task(synthetic_dir, task, "train").examples[:8]

    def batch(ex):
        return collate(ex, get_task(task), tokenizer)

    grads.capture(0)
    model.loss(batch(examples)).backward()
    for m, half in enumerate((examples[:4], examples[4:])):
        grads.capture(1, zero=m == 0)
        (model.loss(batch(half)) / 2).backward()
    assert grads.G[0].abs().sum() > 0
    assert torch.allclose(grads.G[1], grads.G[0], rtol=1e-4, atol=1e-7)
    grads.capture(1)  # zero=True starts the row afresh
    assert grads.G[1].abs().sum() == 0


def run_config(synthetic_dir, tmp_path, **kw):
    base = dict(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"), epochs=1,
                max_steps=2, batch_size=8, max_length=32, eval_batch_size=32, progress=False)
    return TrainConfig(**{**base, **kw})


def read_log(tmp_path):
    return [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("combiner", ["sum", "pcgrad"])
def test_accumulated_training_with_a_cosine_schedule_and_dropout_schedule_is_finite(
        combiner, synthetic_dir, tmp_path, monkeypatch):
    epochs_started = []
    original = MultitaskModel.start_epoch

    def start_epoch(self, epoch, dropout=None):
        epochs_started.append((epoch, dropout))
        original(self, epoch, dropout)

    monkeypatch.setattr(MultitaskModel, "start_epoch", start_epoch)
    train(run_config(synthetic_dir, tmp_path, combiner=combiner, accumulation_steps=2,
                     lr_schedule="cosine", dropout_schedule=(0.3, 0.43), epochs=2))
    log = read_log(tmp_path)
    assert len(log) == 2 and all(math.isfinite(v) for r in log for v in r["losses"].values())
    assert epochs_started == [(0, 0.3)]


def test_a_frozen_backbone_keeps_its_weights_while_the_heads_learn(synthetic_dir, tmp_path):
    train(run_config(synthetic_dir, tmp_path, freeze_backbone_steps=2, combiner="pcgrad",
                     max_steps=2))
    saved = load_file(tmp_path / "run" / "model.safetensors")
    torch.manual_seed(0)  # as train() does before building the model: the same initial heads
    initial = MultitaskModel(load_backbone("tiny", seed=0)[0],
                             {t: get_task(t) for t in ("sst", "quora", "sts")})
    for name, value in initial.state_dict().items():
        if name.startswith("bert."):
            assert torch.equal(saved[name], value), name
    assert any(not torch.equal(saved[n], v) for n, v in initial.state_dict().items()
               if n.startswith("heads."))
