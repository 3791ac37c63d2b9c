"""LiveCurves: throttled redraws, the progress-bar fallback, saved figures and run replays."""

import json

import numpy as np
import pytest

from mtl_tutor.viz.live import LiveCurves, Throttle
from mtl_tutor.viz.live_figure import curve_series, curves_figure, trailing_mean

PAIRS = ("sst/quora", "sst/sts", "quora/sts")


def step_record(step: int) -> dict:
    cosines = {pair: float(np.cos(step / 7 + k)) for k, pair in enumerate(PAIRS)}
    return {
        "step": step, "epoch": step // 100, "lr": 1e-5,
        "losses": {"sst": 1.5 / (1 + step), "quora": 0.7, "sts": 2.0 - step / 1000},
        "grad_norms": {"sst": 1.0, "quora": 2.0, "sts": 3.0}, "cosines": cosines,
        "conflict": min(cosines.values()) < 0, "changed": 0.1, "time": step * 0.01,
    }


def eval_record(step: int) -> dict:
    return {"step": step, "epoch": step // 100, "sst_acc": 0.4, "para_acc": 0.7,
            "sts_pearson": 0.5, "overall": 0.62}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttle_respects_both_limits():
    clock = FakeClock()
    throttle = Throttle(min_seconds=1.0, min_steps=5, clock=clock)
    fired = []
    for step in range(100):
        clock.now = step * 0.1  # 10 steps a second: the seconds limit binds
        if throttle.ready():
            fired.append(step)
    assert fired == list(range(0, 100, 10))
    throttle, fired = Throttle(min_seconds=1.0, min_steps=5, clock=clock), []
    for step in range(100):
        clock.now = 100 + step * 10.0  # slow steps: the step limit binds
        if throttle.ready():
            fired.append(step)
    assert fired == list(range(0, 100, 5))


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"min_seconds": -1.0, "min_steps": 1}, "min_seconds"),
    ({"min_seconds": 1.0, "min_steps": 0}, "min_steps"),
])
def test_throttle_rejects_bad_limits(kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        Throttle(**kwargs)


def test_trailing_mean():
    np.testing.assert_allclose(trailing_mean(np.array([1, 0, 1, 1.0]), 2), [1, 0.5, 0.5, 1])


def test_series_hold_every_task_pair_and_metric():
    steps = [step_record(s) for s in range(30)]
    series = curve_series(steps, [eval_record(10), eval_record(20)], window=5)
    names = [(curve.panel, curve.name) for curve in series]
    assert names == [(0, "sst"), (0, "quora"), (0, "sts"), *[(2, p) for p in PAIRS],
                     (2, "any pair"), (1, "sst_acc"), (1, "para_acc"), (1, "sts_pearson"),
                     (1, "overall")]
    any_pair = series[6]
    expected = trailing_mean(np.array([r["conflict"] for r in steps], dtype=float), 5)
    np.testing.assert_allclose(any_pair.y, expected)
    thinned = curve_series([step_record(s) for s in range(5000)], [], max_points=1000)
    assert len(thinned[0].x) <= 1000


def test_fallback_throttles_the_progress_bar_and_saves_the_figure(tmp_path, capsys):
    clock = FakeClock()
    curves = LiveCurves(every_seconds=1.0, every_steps=5, notebook=False, clock=clock)
    for step in range(200):
        clock.now = step * 0.05  # 20 steps a second
        curves.on_step(step_record(step))
        if step % 100 == 99:
            curves.on_eval(eval_record(step))
    assert curves.redraws == 10 + 2  # one per simulated second, plus one per evaluation
    curves.on_train_end({"run": str(tmp_path)})
    assert curves.redraws == 13
    assert "conflict=" in capsys.readouterr().err
    assert (tmp_path / "live_curves.html").is_file()
    assert curves.saved[0] == tmp_path / "live_curves.html"


def test_notebook_widget_is_restyled_in_place():
    clock = FakeClock()
    curves = LiveCurves(every_seconds=0.0, every_steps=10, notebook=True, clock=clock)
    for step in range(25):
        curves.on_step(step_record(step))
    assert curves.redraws == 3  # steps 0, 10, 20
    widget = curves.figure_widget
    first_trace = widget.data[0]
    for step in range(25, 31):
        curves.on_step(step_record(step))
    assert widget.data[0] is first_trace  # same trace object, new data
    np.testing.assert_allclose(first_trace.y, [step_record(s)["losses"]["sst"] for s in range(31)])
    curves.on_eval(eval_record(30))  # a new panel's curves: the figure is rebuilt once
    assert "overall" in [trace.name for trace in widget.data]


def test_replay_of_a_finished_run(tmp_path):
    with (tmp_path / "log.jsonl").open("w") as log:
        for step in range(40):
            log.write(json.dumps(step_record(step)) + "\n")
    (tmp_path / "eval.jsonl").write_text(json.dumps(eval_record(39)) + "\n")
    curves = LiveCurves.from_run(tmp_path, notebook=False)
    assert len(curves.steps) == 40 and len(curves.evals) == 1
    fig = curves.figure()
    assert {trace.name for trace in fig.data} >= {"sst", "any pair", "overall"}
    bundle = curves._repr_mimebundle_()
    assert "image/png" in bundle or "text/html" in bundle
    with pytest.raises(FileNotFoundError, match="log.jsonl"):
        LiveCurves.from_run(tmp_path / "missing")


def test_empty_run_draws_an_empty_figure():
    assert len(curves_figure([], []).data) == 0
    with pytest.raises(ValueError, match="window"):
        LiveCurves(window=0)


def test_attached_to_a_real_training_run(synthetic_dir, tmp_path):
    from mtl_tutor.run_config import TrainConfig
    from mtl_tutor.train import train

    config = TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"),
                         epochs=1, max_steps=4, eval_every=2, batch_size=8, max_length=32,
                         eval_batch_size=32, progress=False, combiner="pcgrad")
    curves = LiveCurves(every_seconds=0.0, every_steps=1, notebook=False)
    train(config, callbacks=[curves])
    assert [record.step for record in curves.steps] == [0, 1, 2, 3]
    assert (tmp_path / "run" / "live_curves.html").is_file()
    replay = LiveCurves.from_run(tmp_path / "run", notebook=False)
    assert replay.steps == curves.steps and len(replay.evals) == len(curves.evals)
    assert [trace.name for trace in replay.figure().data] == [
        trace.name for trace in curves.figure().data
    ]
