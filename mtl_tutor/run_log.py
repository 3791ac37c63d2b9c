"""The records of a run, and what they say: one :class:`StepRecord` per training step in
``RUN/log.jsonl``, one :class:`EvalRecord` per evaluation in ``RUN/eval.jsonl``.

:class:`RunLog` is the one writer of both files and :func:`read_steps` / :func:`read_evals` their
one reader; logs written by earlier versions read the same. A step with per-task gradients
carries its statistics (:func:`mtl_tutor.gradients.conflict_statistics`): each task's gradient
norm, the pairwise cosines ``cos(g_i, g_j)`` ("a/b"), how far the combined direction ``d`` moved
from the plain sum, ``changed = |d - sum_k g_k| / |sum_k g_k|``, per-layer-group cosines, and
``weights`` (task -> the weight that multiplied its gradient or loss) where the combiner forms
weights, and ``altered`` (task -> whether gradient surgery changed its gradient) where it
operates on gradients. Statistics this version does not know are kept in ``other`` and written
back unchanged.

A step *conflicts* when some pair of its task gradients has a negative cosine;
:func:`conflict_fraction` is the share of such steps among those with per-task gradients.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_FILE, EVAL_FILE = "log.jsonl", "eval.jsonl"
STATISTICS = ("grad_norms", "cosines", "changed", "layer_cosines", "weights", "altered")
DERIVED = ("conflict",)  # written for readers of the raw JSON; recomputed from the cosines


@dataclass
class StepRecord:
    """One optimiser step. step: from 0 over the run; epoch: from 0; lr: the backbone's
    learning rate after the step's schedule update; losses: task -> loss; time: seconds since
    the run started. grad_norms, cosines, changed and layer_cosines are None for a step
    without per-task gradients; weights and altered for combiners that form none."""

    step: int
    epoch: int
    lr: float
    losses: dict[str, float]
    time: float
    grad_norms: dict[str, float] | None = None
    cosines: dict[str, float] | None = None
    changed: float | None = None
    layer_cosines: dict[str, dict[str, float]] | None = None
    weights: dict[str, float] | None = None
    altered: dict[str, bool] | None = None
    other: dict[str, Any] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return list(self.losses)

    @property
    def has_pairs(self) -> bool:
        """Whether the step logged the cosines of a pair of task gradients."""
        return bool(self.cosines)

    def cosine(self, pair: str) -> float | None:
        """The cosine of the pair "a/b" (logged as "a/b" or "b/a": a step's task order may be
        shuffled), None when the step did not hold both tasks."""
        a, _, b = pair.partition("/")
        cosines = self.cosines or {}
        return cosines.get(pair, cosines.get(f"{b}/{a}"))

    def conflicts(self, pair: str | None = None) -> bool:
        """Whether ``pair`` ("a/b"), or any pair when None, had a negative cosine."""
        if pair is not None:
            cosine = self.cosine(pair)
            return cosine is not None and cosine < 0
        return any(c < 0 for c in (self.cosines or {}).values())

    @property
    def conflict(self) -> bool:
        return self.conflicts()

    @classmethod
    def from_statistics(cls, step: int, epoch: int, lr: float, losses: Mapping[str, float],
                        time: float, statistics: Mapping[str, Any]) -> StepRecord:
        """A record from the trainer's numbers and the step's statistics dictionary (known keys
        become fields, the others are kept in ``other``)."""
        known = {k: statistics[k] for k in STATISTICS if k in statistics}
        other = {k: v for k, v in statistics.items() if k not in STATISTICS + DERIVED}
        return cls(step, epoch, lr, dict(losses), time, **known, other=other)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> StepRecord:
        """A record from one line of log.jsonl (of this or an earlier version)."""
        missing = [k for k in ("step", "epoch", "losses") if k not in raw]
        if missing:
            raise ValueError(f"a step record needs {', '.join(missing)}; got keys {sorted(raw)}")
        statistics = {k: v for k, v in raw.items()
                      if k not in ("step", "epoch", "lr", "losses", "time")}
        return cls.from_statistics(int(raw["step"]), int(raw["epoch"]),
                                   float(raw.get("lr", float("nan"))), raw["losses"],
                                   float(raw.get("time", float("nan"))), statistics)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of one log.jsonl line."""
        raw: dict[str, Any] = {"step": self.step, "epoch": self.epoch, "lr": self.lr,
                               "losses": self.losses}
        for name in ("grad_norms", "cosines"):
            if getattr(self, name) is not None:
                raw[name] = getattr(self, name)
        if self.cosines is not None:
            raw["conflict"] = self.conflict
        for name in ("changed", "weights", "altered", "layer_cosines"):
            if getattr(self, name) is not None:
                raw[name] = getattr(self, name)
        return {**raw, **self.other, "time": self.time}


@dataclass
class EvalRecord:
    """One evaluation on the dev set: after ``step`` steps, in epoch ``epoch`` (counted from 1
    at the end of the first), the metrics of :func:`mtl_tutor.evaluate.evaluate`."""

    step: int
    epoch: int
    metrics: dict[str, float]

    @property
    def score(self) -> float:
        """What the best model is chosen by: the overall score, else the metrics' sum."""
        return self.metrics.get("overall", sum(self.metrics.values()))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EvalRecord:
        metrics = {k: float(v) for k, v in raw.items() if k not in ("step", "epoch")}
        return cls(int(raw["step"]), int(raw["epoch"]), metrics)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of one eval.jsonl line (also ``train``'s summary entries)."""
        return {"step": self.step, "epoch": self.epoch, **self.metrics}


def _read(path: Path, parse) -> list:
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(parse(json.loads(line)))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise ValueError(f"{path}:{number}: not a record of this log ({e})") from e
    return records


def _log_path(run_or_file: str | Path, name: str) -> Path:
    path = Path(run_or_file)
    return path / name if path.is_dir() else path


def read_steps(run_or_file: str | Path) -> list[StepRecord]:
    """The step records of a run directory (or of a log.jsonl file); [] when there is none."""
    return _read(_log_path(run_or_file, LOG_FILE), StepRecord.from_dict)


def read_evals(run_or_file: str | Path) -> list[EvalRecord]:
    """The evaluation records of a run directory (or of an eval.jsonl file)."""
    return _read(_log_path(run_or_file, EVAL_FILE), EvalRecord.from_dict)


def drop_records_after(path: Path, last_step: int) -> None:
    """Keep the records of steps <= ``last_step`` (those after a checkpoint are redone)."""
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= last_step]
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


class RunLog:
    """Appends the records of a run to ``RUN/log.jsonl`` and ``RUN/eval.jsonl``.

    run_dir: None writes nothing (the ranks other than 0 of a multi-process run).
    resume_after: the step of the checkpoint a resumed run continues from; the records of the
    steps after it, which the run repeats, are dropped first. None starts both files afresh.
    """

    def __init__(self, run_dir: Path | None, resume_after: int | None = None):
        if run_dir is not None and resume_after is not None:
            drop_records_after(run_dir / LOG_FILE, resume_after - 1)
            drop_records_after(run_dir / EVAL_FILE, resume_after)
        mode = "w" if resume_after is None else "a"
        self.steps = open(os.devnull if run_dir is None else run_dir / LOG_FILE, mode,
                          encoding="utf-8")
        self.evals = open(os.devnull if run_dir is None else run_dir / EVAL_FILE, mode,
                          encoding="utf-8")

    def write_step(self, record: StepRecord) -> None:
        self.steps.write(json.dumps(record.to_dict()) + "\n")

    def write_eval(self, record: EvalRecord) -> None:
        self.evals.write(json.dumps(record.to_dict()) + "\n")
        self.evals.flush()

    def flush(self) -> None:
        self.steps.flush()
        self.evals.flush()

    def close(self) -> None:
        self.steps.close()
        self.evals.close()


def step_records(records: Iterable[StepRecord | Mapping]) -> list[StepRecord]:
    """Records as StepRecords; dictionaries (lines of log.jsonl read with ``json.loads``) are
    read as :meth:`StepRecord.from_dict` reads them."""
    return [r if isinstance(r, StepRecord) else StepRecord.from_dict(r) for r in records]


def eval_records(records: Iterable[EvalRecord | Mapping]) -> list[EvalRecord]:
    """Records as EvalRecords (dictionaries as eval.jsonl holds them are read)."""
    return [r if isinstance(r, EvalRecord) else EvalRecord.from_dict(r) for r in records]


def conflict_steps(records: Iterable[StepRecord | Mapping], pair: str | None = None
                   ) -> tuple[int, int]:
    """(steps in which ``pair``, or any pair when None, had a negative cosine, steps that logged
    the cosine of ``pair``, or of any pair)."""
    paired = [r for r in step_records(records)
              if (r.has_pairs if pair is None else r.cosine(pair) is not None)]
    return sum(r.conflicts(pair) for r in paired), len(paired)


def conflict_fraction(records: Iterable[StepRecord | Mapping], pair: str | None = None
                      ) -> float | None:
    """The share of the steps with per-task gradients in which ``pair`` (any pair when None)
    had a negative cosine; None when no step logged cosines (loss weightings, single tasks)."""
    conflicted, steps = conflict_steps(records, pair)
    return conflicted / steps if steps else None


def changed_steps(records: Iterable[StepRecord | Mapping], threshold: float) -> tuple[int, int]:
    """(steps whose ``changed`` exceeds ``threshold``, steps that logged ``changed``)."""
    logged = [r for r in step_records(records) if r.changed is not None]
    return sum(r.changed > threshold for r in logged), len(logged)
