"""Projected attention layers: task-specific parameters outside G, one task active at a time."""

import pytest
import torch

from mtl_tutor import load_backbone
from mtl_tutor.checkpoint import load_run
from mtl_tutor.data import TaskBatches, load_task
from mtl_tutor.data.tasks import get_task
from mtl_tutor.model import MultitaskModel
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import train

TASKS = ("sst", "quora", "sts")


def build(pals, seed=0):
    bert, _ = load_backbone("tiny", seed=seed)
    return MultitaskModel(bert, {t: get_task(t) for t in TASKS}, pals=pals).eval()


@pytest.fixture(scope="module")
def batches(tiny_backbone, synthetic_dir):
    _, tokenizer = tiny_backbone
    return {t: next(TaskBatches(load_task(synthetic_dir, t, "train"), tokenizer, 6))
            for t in TASKS}


def randomise_decoders(model):
    torch.manual_seed(1)
    with torch.no_grad():
        for pal in model.pals.tasks.values():
            pal.decoder.weight.normal_(std=0.5)


def test_pal_parameters_are_task_parameters_and_never_shared():
    model = build({"size": 8, "num_heads": 2})
    shared = {id(p) for p in model.shared_parameters()}
    pal = {id(p) for p in model.pals.parameters()}
    assert pal and not pal & shared
    assert pal <= {id(p) for p in model.task_parameters()}
    assert not any(name.startswith("pals.") for name, _ in model.bert.named_parameters())
    # one V^E and V^D per task, one attention per layer per task
    assert set(model.pals.tasks) == set(TASKS)
    assert len(model.pals.tasks["sst"].attention) == model.bert.config.num_hidden_layers


def test_fresh_pals_leave_the_backbone_function_unchanged(batches):
    plain, with_pals = build(None), build({"size": 8, "num_heads": 2})
    with_pals.heads.load_state_dict(plain.heads.state_dict())
    for t in TASKS:
        assert torch.allclose(with_pals(batches[t]), plain(batches[t]), atol=1e-6)


def test_only_the_batch_tasks_pal_runs_and_gets_gradients(batches):
    plain, model = build(None), build({"size": 8, "num_heads": 2, "tasks": ["sst"]})
    model.heads.load_state_dict(plain.heads.state_dict())
    randomise_decoders(model)
    assert not torch.allclose(model(batches["sst"]), plain(batches["sst"]), atol=1e-4)
    assert torch.allclose(model(batches["sts"]), plain(batches["sts"]), atol=1e-6)
    both = build({"size": 8, "num_heads": 2})
    randomise_decoders(both)
    both.loss(batches["quora"]).backward()
    assert all(p.grad is None for p in both.pals.tasks["sst"].parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in both.pals.tasks["quora"].parameters())


def test_pals_give_the_same_outputs_padded_and_unpadded(batches):
    model = build({"size": 8, "num_heads": 2})
    randomise_decoders(model)
    model.bert.use_attention("padded")
    padded = {t: model(batches[t]) for t in TASKS}
    model.bert.use_attention("unpadded")
    for t in TASKS:
        assert torch.allclose(model(batches[t]), padded[t], atol=1e-5)


def test_pal_options_are_validated():
    with pytest.raises(ValueError, match="divisible"):
        build({"size": 10, "num_heads": 4})
    with pytest.raises(ValueError, match="dropout"):
        build({"size": 8, "num_heads": 2, "dropout": 1.5})


def test_a_pal_run_trains_and_reloads(synthetic_dir, tmp_path, batches):
    config = TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"),
                         epochs=1, max_steps=2, batch_size=8, max_length=32, eval_batch_size=32,
                         progress=False, combiner="pcgrad", pals={"size": 8, "num_heads": 2})
    summary = train(config)
    assert summary["best"]["overall"] == summary["best"]["overall"]  # not NaN
    model, _, _ = load_run(tmp_path / "run")
    assert model.pals is not None
    assert any(p.abs().sum() > 0 for p in model.pals.tasks["sst"].decoder.parameters())
