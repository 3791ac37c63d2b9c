"""The trainer trains exactly as it did before it was written as named steps: each step's losses
and task weights equal those recorded then (tests/fixtures/trainer_reference/README.md).

They were recorded in one thread (the order of a sum over threads moves the last bits, and
GradVac's weights amplify that); in one thread on the machine that recorded them the values are
equal bit for bit, and the tolerance only allows for another CPU's floating-point kernels, far
below what a changed step would give."""

import json
from pathlib import Path

import pytest
import torch

from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import train

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "trainer_reference" / "steps.json")
                       .read_text())


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("case", list(REFERENCE))
def test_each_step_equals_the_recorded_run(case, synthetic_dir, tmp_path, one_thread):
    recorded = REFERENCE[case]
    train(TrainConfig(data=str(synthetic_dir), out=str(tmp_path / "run"), **recorded["config"]))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == len(recorded["steps"])
    for record, expected in zip(log, recorded["steps"]):
        assert record["losses"] == pytest.approx(expected["losses"], rel=1e-6, abs=1e-9)
        if expected["weights"] is None:
            assert record.get("weights") is None
        else:
            assert record["weights"] == pytest.approx(expected["weights"], rel=1e-6, abs=1e-9)
