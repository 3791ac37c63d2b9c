"""A notebook's MODE: smoke, cpu, gpu, or chosen from whether the real data is found; the banner
it prints first; the data and budget it hands the notebook."""

from dataclasses import fields

import pytest
import torch

from mtl_tutor.data import DATA_ENV, DataNotFoundError, load_task
from mtl_tutor.notebook_mode import BUDGETS, MODES, Budget, notebook_mode
from mtl_tutor.run_config import TrainConfig


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """No data where the package looks."""
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nothing-here"))
    return tmp_path / "nothing-here"


def test_smoke_is_the_tiny_backbone_on_the_synthetic_corpus(no_data, tmp_path, capsys):
    mode = notebook_mode("smoke", tmp_path / "work", synthetic={"conflict": 0.25})
    out = capsys.readouterr().out
    assert out == "mtl-tutor mode=smoke backbone=tiny data=synthetic rows=192\n"
    assert (mode.mode, mode.source, mode.backbone, mode.rows) == ("smoke", "synthetic", "tiny",
                                                                  192)
    assert mode.data == tmp_path / "work" / "data"
    assert len(load_task(mode.data, "sst", "train")) == 64
    assert len(load_task(mode.data, "quora", "dev")) == 32


def test_without_data_the_choice_falls_back_to_smoke_with_the_download_command(no_data,
                                                                               tmp_path, capsys):
    mode = notebook_mode(None, tmp_path / "work")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "mtl-tutor mode=smoke backbone=tiny data=synthetic rows=192"
    notice = "\n".join(lines[1:])
    assert str(no_data) in notice and "    mtl-tutor data download" in notice
    assert "smoke mode" in notice
    assert mode.mode == "smoke"


def test_with_data_the_choice_is_cpu_on_a_sample_of_it(monkeypatch, synthetic_dir, tmp_path,
                                                       capsys):
    monkeypatch.setenv(DATA_ENV, str(synthetic_dir))
    mode = notebook_mode(None, tmp_path / "work", train_rows=10, dev_rows=5)
    assert capsys.readouterr().out == (
        "mtl-tutor mode=cpu backbone=minilm-l6 data=cs224n rows=30\n")
    assert (mode.mode, mode.source, mode.data) == ("cpu", "cs224n", tmp_path / "work" / "data")
    for task in ("sst", "quora", "sts"):
        sample = load_task(mode.data, task, "train").examples
        full = [e.id for e in load_task(synthetic_dir, task, "train").examples]
        assert len(sample) == 10 and [e.id for e in sample] == sorted(
            (e.id for e in sample), key=full.index)
        assert len(load_task(mode.data, task, "dev")) == 5


def test_the_data_argument_wins_and_full_budgets_read_the_folder_in_place(
        no_data, synthetic_dir, tmp_path, capsys):
    mode = notebook_mode("cpu", tmp_path / "work", data=synthetic_dir, train_rows=None,
                         dev_rows=None)
    assert mode.data == synthetic_dir and mode.rows == 3 * 64
    assert capsys.readouterr().out.endswith("rows=192\n")
    assert not (tmp_path / "work").exists()


def test_cpu_or_gpu_without_data_is_an_error_with_the_download_command(no_data, tmp_path):
    for requested in ("cpu", "gpu"):
        with pytest.raises(DataNotFoundError, match=f"MODE='{requested}' needs the CS224N data"
                                                    r".*fetch it with: mtl-tutor data download"):
            notebook_mode(requested, tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_gpu_mode_without_a_gpu_says_so(synthetic_dir, tmp_path):
    with pytest.raises(ValueError, match="needs a CUDA device"):
        notebook_mode("gpu", tmp_path, data=synthetic_dir)


def test_the_train_config_carries_the_mode_and_takes_overrides(no_data, tmp_path):
    mode = notebook_mode("smoke", tmp_path / "work")
    config = mode.train_config(tmp_path / "run", combiner="pcgrad", epochs=1)
    smoke = BUDGETS["smoke"]
    assert isinstance(config, TrainConfig)
    assert (config.backbone, config.data, config.out) == ("tiny", str(mode.data),
                                                          str(tmp_path / "run"))
    assert (config.batch_size, config.max_length, config.lr, config.device) == (
        smoke.batch_size, smoke.max_length, smoke.lr, smoke.device)
    assert (config.combiner, config.epochs, config.progress) == ("pcgrad", 1, False)


def test_modes_and_budget_options_are_validated(tmp_path):
    with pytest.raises(ValueError, match="MODE must be one of 'smoke', 'cpu', 'gpu' or None"):
        notebook_mode("fast", tmp_path)
    with pytest.raises(ValueError, match=r"unknown budget option\(s\) \['steps'\]"):
        notebook_mode("smoke", tmp_path, steps=3)
    with pytest.raises(ValueError, match="synthetic corpus holds sst, quora, sts only"):
        notebook_mode("smoke", tmp_path, tasks=("cfimdb",))


def test_every_mode_has_a_budget_and_the_real_modes_use_minilm():
    assert set(BUDGETS) == set(MODES)
    assert all(isinstance(b, Budget) for b in BUDGETS.values())
    assert [BUDGETS[m].backbone for m in MODES] == ["tiny", "minilm-l6", "minilm-l6"]
    gpu = BUDGETS["gpu"]
    defaults = TrainConfig()
    assert gpu.train_rows is None and gpu.dev_rows is None  # all of the data
    assert all(getattr(gpu, f.name) == getattr(defaults, f.name) for f in fields(Budget)
               if f.name in ("epochs", "batch_size", "max_length", "eval_batch_size", "lr"))


def test_budgets_change_one_mode_only_after_the_options_of_every_mode(no_data, synthetic_dir,
                                                                       tmp_path, capsys):
    budgets = {"smoke": {"epochs": 3}, "cpu": {"max_steps": 7, "batch_size": 2}}
    smoke = notebook_mode("smoke", tmp_path / "smoke", budgets=budgets, batch_size=4)
    cpu = notebook_mode("cpu", tmp_path / "cpu", data=synthetic_dir, budgets=budgets,
                        batch_size=4)
    assert (smoke.budget.epochs, smoke.budget.max_steps, smoke.budget.batch_size) == (3, None, 4)
    assert (cpu.budget.epochs, cpu.budget.max_steps, cpu.budget.batch_size) == (
        BUDGETS["cpu"].epochs, 7, 2)
    assert cpu.train_config(tmp_path / "run").max_steps == 7


def test_budgets_name_modes_and_budget_fields(tmp_path):
    with pytest.raises(ValueError, match=r"budgets: keys must be modes .*got \['laptop'\]"):
        notebook_mode("smoke", tmp_path, budgets={"laptop": {"epochs": 1}})
    with pytest.raises(ValueError, match=r"unknown budget option\(s\) \['steps'\] in "
                                         r"budgets\['cpu'\]; valid: backbone, "):
        notebook_mode("smoke", tmp_path, budgets={"cpu": {"steps": 3}})
