"""Shared fixtures: a small synthetic corpus, the real CS224N data when present, the tiny
backbone."""

from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cs224n"
PUBLIC_DATA = REAL_DATA.parent / "cs224n-public"


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A small three-task corpus in CS224N format (64 train, 32 dev, 16 test rows per task)."""
    from mtl_tutor.data import write_synthetic_corpus

    return write_synthetic_corpus(tmp_path_factory.mktemp("synthetic"), n_train=64, n_dev=32,
                                  n_test=16, seed=0)


@pytest.fixture(scope="session")
def finished_run(synthetic_dir, tmp_path_factory) -> Path:
    """A finished two-step run of the tiny backbone on the synthetic corpus (copy it before
    changing it)."""
    from mtl_tutor.run_config import TrainConfig
    from mtl_tutor.train import train

    out = tmp_path_factory.mktemp("finished") / "run"
    train(TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(out), max_steps=2,
                      batch_size=8, max_length=32, eval_batch_size=32, progress=False))
    return out


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    if not (REAL_DATA / "sst-train.csv").exists():
        pytest.skip(f"real CS224N data not found at {REAL_DATA} (see README: download it there)")
    return REAL_DATA


@pytest.fixture(scope="session")
def public_data_dir() -> Path:
    """The public release's files under their own names (quora-train.csv and
    quora-test-student.csv are not among them)."""
    if not (PUBLIC_DATA / "ids-sst-train.csv").exists():
        pytest.skip(f"the public CS224N files were not found at {PUBLIC_DATA}")
    return PUBLIC_DATA


@pytest.fixture(scope="session")
def tiny_backbone():
    from mtl_tutor import load_backbone

    return load_backbone("tiny", seed=0)


def pytest_terminal_summary(terminalreporter):
    """Close the log with the notebooks' total time (the target: 10 minutes on a 2-core CPU)."""
    stats = terminalreporter.stats
    reports = [r for outcome in ("passed", "failed") for r in stats.get(outcome, [])
               if r.when == "call" and r.nodeid.startswith("tests/test_notebooks.py")]
    if reports:
        seconds = sum(r.duration for r in reports)
        terminalreporter.write_line(f"notebooks: {len(reports)} tests in {seconds:.0f} s")
