"""The weights' moving average (``ema_decay``): its formula with the warm-up, the swap in and
out, its state, and a run that scores and saves the average and resumes it exactly."""

import os
import signal

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from mtl_tutor.checkpoint import load_training_state
from mtl_tutor.evaluate import evaluate
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import TrainingInterrupted, build_run, draw_batches, take_step, train
from mtl_tutor.weight_average import WARMUP, WeightAverage


def linear() -> nn.Linear:
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    layer.bias.requires_grad_(False)  # a frozen parameter is not averaged
    return layer


def test_the_average_follows_its_formula_with_the_warm_up():
    layer = linear()
    average = WeightAverage(layer, decay=0.5)
    expected = layer.weight.detach().clone()
    for t in range(4):
        with torch.no_grad():
            layer.weight.add_(torch.randn(2, 3))
        beta = min(0.5, (1 + t) / (WARMUP + t))
        assert average.beta() == pytest.approx(beta)
        average.update()
        expected = beta * expected + (1 - beta) * layer.weight.detach()
        torch.testing.assert_close(average.average[0], expected)
    assert len(average.average) == 1 and average.updates == 4


def test_the_average_is_swapped_in_and_the_weights_come_back_after_an_error_too():
    layer = linear()
    average = WeightAverage(layer, decay=0.9)
    own = layer.weight.detach().clone()
    average.average[0].fill_(7.0)
    with average.swapped_in():
        assert torch.all(layer.weight == 7.0)
    assert torch.equal(layer.weight, own)
    with pytest.raises(RuntimeError, match="inside"), average.swapped_in():
        raise RuntimeError("inside")
    assert torch.equal(layer.weight, own) and layer.weight.requires_grad


def test_its_state_loads_back_and_another_models_state_is_refused():
    layer = linear()
    average = WeightAverage(layer, decay=0.9)
    average.update()
    copy = WeightAverage(linear(), decay=0.9)
    copy.load_state_dict(average.state_dict())
    assert copy.updates == 1 and torch.equal(copy.average[0], average.average[0])
    with pytest.raises(ValueError, match="not this model's 2 with decay 0.9"):
        WeightAverage(nn.Linear(3, 2), decay=0.9).load_state_dict(average.state_dict())
    with pytest.raises(ValueError, match="with decay 0.9, not .* with decay 0.5"):
        WeightAverage(linear(), decay=0.5).load_state_dict(average.state_dict())


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1])
def test_a_decay_outside_zero_one_is_refused(decay):
    with pytest.raises(ValueError, match=r"must be in \(0, 1\)"):
        WeightAverage(linear(), decay)


def config(synthetic_dir, out, **overrides) -> TrainConfig:
    return TrainConfig(**{"backbone": "tiny", "data": str(synthetic_dir), "out": str(out),
                          "batch_size": 16, "max_length": 32, "max_steps": 5,
                          "ema_decay": 0.6, "progress": False, **overrides})


def trained(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters() if p.requires_grad]


def test_each_step_of_a_run_moves_the_average_towards_the_weights_after_it(synthetic_dir,
                                                                             tmp_path):
    run = build_run(config(synthetic_dir, tmp_path / "run"))
    expected = trained(run.model)
    for step in range(3):
        take_step(run, draw_batches(run, next(run.sampler)), step)
        beta = min(0.6, (1 + step) / (WARMUP + step))
        expected = [beta * e + (1 - beta) * w for e, w in zip(expected, trained(run.model))]
    for average, want in zip(run.weight_average.average, expected):
        torch.testing.assert_close(average, want)


def test_a_run_scores_and_saves_the_average_and_trains_on_the_raw_weights(synthetic_dir,
                                                                          tmp_path):
    summary = train(config(synthetic_dir, tmp_path / "run", epochs=1, max_steps=3))
    assert [entry["step"] for entry in summary["history"]] == [3]  # one evaluation, at the end
    state = load_training_state(tmp_path / "run")
    run = build_run(config(synthetic_dir, tmp_path / "scoring"))
    names = [n for n, p in run.model.named_parameters() if p.requires_grad]
    saved = load_file(tmp_path / "run" / "model.safetensors")
    for name, average in zip(names, state["weight_average"]["average"]):
        assert torch.equal(saved[name], average), name
    assert any(not torch.allclose(saved[n], state["model"][n]) for n in names)
    run.model.load_state_dict(saved)
    best = {k: v for k, v in summary["best"].items() if k not in ("step", "epoch")}
    assert evaluate(run.model, run.dev_loaders) == pytest.approx(best, abs=1e-12)


class SignalAt:
    def __init__(self, step):
        self.step = step

    def on_step(self, record):
        if record.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_an_interrupted_run_resumes_its_average_exactly(synthetic_dir, tmp_path):
    settings = {"max_steps": 6, "eval_every": 3}
    straight = train(config(synthetic_dir, tmp_path / "straight", **settings))
    with pytest.raises(TrainingInterrupted, match="after step 2"):
        train(config(synthetic_dir, tmp_path / "cut", **settings), callbacks=[SignalAt(1)])
    resumed = train(config(synthetic_dir, tmp_path / "cut", **settings), resume=True)
    a, b = (load_training_state(tmp_path / name)["weight_average"]
            for name in ("straight", "cut"))
    assert a["updates"] == b["updates"] == 6
    assert all(torch.equal(x, y) for x, y in zip(a["average"], b["average"]))
    assert straight["best"] == resumed["best"]
    saved = [load_file(tmp_path / name / "model.safetensors") for name in ("straight", "cut")]
    assert all(torch.equal(saved[0][k], saved[1][k]) for k in saved[0])


def test_without_a_decay_a_run_keeps_no_average(synthetic_dir, tmp_path):
    run = build_run(config(synthetic_dir, tmp_path / "run", ema_decay=0.0))
    assert run.weight_average is None
