"""Run modes of the notebooks: what a notebook's ``MODE`` parameter turns into.

A notebook's first code cell calls :func:`notebook_mode` with its ``MODE`` parameter:

- ``"smoke"``: the tiny random BERT on the synthetic corpus, a few steps (what the test suite
  runs through papermill, in seconds);
- ``"cpu"``: the embedded MiniLM-L6 on a seeded sample of the real CS224N data, at a budget that
  finishes a notebook within minutes on a laptop CPU;
- ``"gpu"``: MiniLM-L6 on all of the real data at the training defaults (the leaderboard
  recipes' budget), on a CUDA device;
- ``None``: ``"cpu"`` when the real data is found (in ``data``, else ``$MTL_TUTOR_DATA``, else
  where ``mtl-tutor data download`` puts it), else ``"smoke"`` and a notice saying how to fetch
  it.

The first line it prints is the banner
``mtl-tutor mode=<mode> backbone=<name> data=<cs224n|synthetic> rows=<n>``, ``rows`` being the
training rows of all tasks together. A notebook then reads the backbone, the data folder and
the budgets from the returned :class:`NotebookMode`, and builds its runs with
:meth:`NotebookMode.train_config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .data.io import decode_file, records, task_file
from .data.location import DOWNLOAD_COMMAND, DataNotFoundError, data_home, missing_files
from .data.subset import write_subset
from .data.synthetic import write_synthetic_corpus
from .data.tasks import MULTITASK
from .run_config import TrainConfig

MODES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Budget:
    """What one mode may spend. ``None`` rows: every row of the file."""

    backbone: str              # name for load_backbone
    train_rows: int | None     # training rows per task
    dev_rows: int | None       # dev rows per task (every evaluation reads all of them)
    epochs: int
    max_steps: int | None      # optimiser steps per training run (None: the epochs decide)
    batch_size: int            # examples per task per step
    max_length: int            # tokens per sequence after truncation
    eval_batch_size: int
    lr: float                  # peak learning rate of the backbone
    device: str


BUDGETS: dict[str, Budget] = {
    "smoke": Budget("tiny", train_rows=64, dev_rows=32, epochs=1, max_steps=None, batch_size=8,
                    max_length=32, eval_batch_size=32, lr=1e-3, device="cpu"),
    "cpu": Budget("minilm-l6", train_rows=1000, dev_rows=300, epochs=1, max_steps=60,
                  batch_size=8, max_length=64, eval_batch_size=64, lr=5e-5, device="cpu"),
    "gpu": Budget("minilm-l6", train_rows=None, dev_rows=None, epochs=3, max_steps=None,
                  batch_size=32, max_length=128, eval_batch_size=128, lr=5e-5, device="cuda"),
}


@dataclass(frozen=True)
class NotebookMode:
    """A notebook's mode, its data and its budget."""

    mode: str                  # "smoke", "cpu" or "gpu"
    source: str                # "cs224n" (real data) or "synthetic"
    data: Path                 # folder of task files the notebook reads
    rows: int                  # training rows of all tasks together
    budget: Budget

    @property
    def backbone(self) -> str:
        return self.budget.backbone

    def banner(self) -> str:
        return (f"mtl-tutor mode={self.mode} backbone={self.backbone} data={self.source} "
                f"rows={self.rows}")

    def train_config(self, out: str | Path, **options) -> TrainConfig:
        """A :class:`TrainConfig` on this mode's data, backbone and budget; ``options`` set any
        other field (or override the budget's)."""
        b = self.budget
        budget = {"backbone": b.backbone, "data": str(self.data), "out": str(out),
                  "epochs": b.epochs, "max_steps": b.max_steps, "batch_size": b.batch_size,
                  "max_length": b.max_length, "eval_batch_size": b.eval_batch_size, "lr": b.lr,
                  "device": b.device, "progress": False}
        return TrainConfig(**{**budget, **options})


def count_rows(path: Path) -> int:
    """Records after the header of a task file (defective ones included)."""
    return sum(1 for _ in records(path, decode_file(path))) - 1


def no_data_notice(folder: Path, missing: Sequence[str]) -> str:
    """The box shown when a notebook falls back to smoke mode for want of data."""
    lines = ["No CS224N data found in", f"    {folder}", f"(no {missing[0]}).",
             "This notebook runs in smoke mode: a tiny random BERT on a synthetic corpus,",
             "whose numbers say nothing about the real tasks. For real results, fetch the",
             "public data once, then run the notebook again:",
             "",
             f"    {DOWNLOAD_COMMAND}"]
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join([rule, *(f"| {line:<{width}} |" for line in lines), rule])


def budget_overrides(overrides: Mapping[str, object], where: str) -> dict[str, object]:
    """``overrides`` after checking that each names a :class:`Budget` field."""
    valid = [f.name for f in fields(Budget)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(f"unknown budget option(s) {unknown}{where}; valid: {', '.join(valid)}")
    return dict(overrides)


def notebook_mode(mode: str | None, work: str | Path, *, data: str | Path | None = None,
                  tasks: Sequence[str] = MULTITASK, seed: int = 0,
                  synthetic: dict | None = None,
                  budgets: Mapping[str, Mapping[str, object]] | None = None,
                  **budget) -> NotebookMode:
    """Resolve ``mode``, prepare the notebook's data under ``work`` and print the banner.

    mode: "smoke", "cpu", "gpu" or None (choose; see the module docstring).
    work: the notebook's scratch folder (the synthetic corpus or the sample go to ``work/data``).
    data: a folder of the real data (default: located as ``--data`` is; never read in smoke mode).
    synthetic: options of :func:`~mtl_tutor.data.synthetic.write_synthetic_corpus` (e.g.
      ``{"conflict": 0.5}``) for smoke mode.
    budgets: overrides of :class:`Budget` fields for one mode only, by mode, e.g.
      ``{"cpu": {"max_steps": 40}}`` (applied after ``budget``).
    budget: overrides of the mode's :class:`Budget` fields in every mode, e.g.
      ``backbone="minilm-l6"``.
    """
    if mode is not None and mode not in MODES:
        raise ValueError(f"MODE must be one of {', '.join(map(repr, MODES))} or None, "
                         f"got {mode!r}")
    budget = budget_overrides(budget, "")
    budgets = dict(budgets or {})
    if set(budgets) - set(MODES):
        raise ValueError(f"budgets: keys must be modes ({', '.join(MODES)}), got "
                         f"{sorted(set(budgets) - set(MODES))}")
    budgets = {name: budget_overrides(overrides, f" in budgets[{name!r}]")
               for name, overrides in budgets.items()}
    tasks = tuple(tasks)
    real = Path(data) if data not in (None, "") else data_home()
    missing = [] if mode == "smoke" else missing_files(real, tasks)
    fell_back = mode is None and bool(missing)
    mode = mode or ("smoke" if missing else "cpu")
    if mode != "smoke" and missing:
        raise DataNotFoundError(f"MODE={mode!r} needs the CS224N data, and {real} has no "
                                f"{missing[0]}; fetch it with: {DOWNLOAD_COMMAND}")
    plan = replace(BUDGETS[mode], **{**budget, **budgets.get(mode, {})})
    if plan.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("MODE='gpu' needs a CUDA device and none is visible; "
                             "use MODE='cpu' on this machine")
    out = Path(work) / "data"
    if mode == "smoke":
        if set(tasks) - set(MULTITASK):
            raise ValueError(f"the synthetic corpus holds {', '.join(MULTITASK)} only; "
                             f"got tasks {tasks}")
        folder = write_synthetic_corpus(out, n_train=plan.train_rows, n_dev=plan.dev_rows,
                                        n_test=8, seed=seed, **(synthetic or {}))
        result = NotebookMode(mode, "synthetic", folder, plan.train_rows * len(tasks), plan)
    elif plan.train_rows is None and plan.dev_rows is None:
        rows = sum(count_rows(task_file(real, task, "train")) for task in tasks)
        result = NotebookMode(mode, "cs224n", real, rows, plan)
    else:
        written = write_subset(real, out, tasks, {"train": plan.train_rows,
                                                   "dev": plan.dev_rows}, seed=seed)
        rows = sum(counts["train"] for counts in written.values())
        result = NotebookMode(mode, "cs224n", out, rows, plan)
    print(result.banner())
    if fell_back:
        print(no_data_notice(real, missing))
    return result
