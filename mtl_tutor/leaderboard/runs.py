"""Leaderboard runs: train one seed of a recipe under a profile and keep its record.

A run trains in a scratch directory (``runs/leaderboard/PROFILE/RECIPE/seedS``); when it
finishes, its record (:mod:`~mtl_tutor.leaderboard.records`) goes to
``results/leaderboard/PROFILE/RECIPE/seedS.json`` and the scratch directory keeps the logs and the
best model but loses ``checkpoint.pt``. A run whose record exists is skipped when the record was
made with the same settings and data, and refused, before anything trains, when not. A run
interrupted after a checkpoint continues from it.

Measures: the wall time of the whole run (building, training, evaluations, the dev predictions),
the trainer's own clock (training and evaluations, across resumptions), steps per second of the
training steps alone (from ``log.jsonl``, the steps that follow an evaluation left out), and the
peak memory (CUDA ``max_memory_allocated``; on the CPU the rise of the process's peak resident
set size, whose kernel high-water mark is reset before each run on Linux). A run that diverges
(NaN or infinite loss) is recorded as such, without predictions.
"""

from __future__ import annotations

import gc
import resource
import shutil
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..checkpoint import TRAINING_STATE
from ..run_config import TrainConfig
from ..run_log import StepRecord, read_evals, read_steps, step_records
from ..train import TrainingDiverged, resolve_device, train
from .recipes import Recipe
from .records import (
    RECORD_FORMAT,
    check_data,
    comparable,
    config_differences,
    dev_predictions,
    epoch_statistics,
    provenance,
    read_record,
    write_json,
)


@dataclass(frozen=True, eq=False)  # one object per run: hashed by identity
class LeaderboardRun:
    """One seed of one recipe under one profile: its resolved config (data, scratch directory
    and seed set) and where its record goes."""

    recipe: Recipe
    profile: str
    seed: int
    config: TrainConfig
    record: Path

    @property
    def label(self) -> str:
        return f"{self.recipe.name} seed {self.seed}"


def recorded_status(run: LeaderboardRun, data: Mapping, data_dir: str | Path) -> str:
    """"recorded" when the run's record exists and was made with the run's settings, "to run"
    when there is none; a record made with other settings or on other data files (``data``:
    :func:`~mtl_tutor.leaderboard.records.data_files` of ``data_dir``) is an error saying what
    differs."""
    if not run.record.exists():
        return "to run"
    record = read_record(run.record)
    check_data(record, data, data_dir, str(run.record))
    differences = config_differences(record, run.config)
    if differences:
        raise ValueError(f"{run.record} was made with other {', '.join(differences)} than "
                         f"{run.label} has now; delete it to run it again")
    return "recorded"


def log_statistics(records: Sequence[StepRecord | Mapping], eval_steps: Iterable[int]) -> dict:
    """Steps and steps per second of the training steps from ``log.jsonl`` records.

    eval_steps: the ``step`` of each evaluation (eval.jsonl); the record that follows one is
    left out of the timing, since its time includes the evaluation and the checkpoint.
    """
    records, eval_steps = step_records(records), set(eval_steps)
    seconds, counted, previous = 0.0, 0, 0.0
    for record in records:
        if record.step not in eval_steps:
            seconds, counted = seconds + record.time - previous, counted + 1
        previous = record.time
    return {"steps": len(records),
            "steps_per_second": counted / seconds if seconds > 0 else None}


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (since the last :func:`reset_peak_rss`)."""
    try:
        return _status_bytes("VmHWM")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def reset_peak_rss() -> int:
    """Reset the kernel's RSS high-water mark (Linux); return the peak from which to count."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the rise is counted from the process's earlier peak
    return peak_rss_bytes()


def execute(run: LeaderboardRun, data: Mapping, command: str) -> dict:
    """Train ``run`` (continuing from its checkpoint if there is one), write its record and
    return it. ``data``: the data files' names and SHA-256; ``command``: the command line."""
    config, scratch = run.config, Path(run.config.out)
    resume = (scratch / TRAINING_STATE).exists()
    if scratch.exists() and not resume:  # a start that left no checkpoint: start again
        shutil.rmtree(scratch)
    device = resolve_device(config.device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = reset_peak_rss()
    start = time.perf_counter()
    summary, diverged = {}, None
    try:
        summary = train(config, resume=resume)
    except TrainingDiverged as e:  # recorded; the other runs go on
        diverged = str(e)
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else peak_rss_bytes() - rss_before)
    evaluations = [e.to_dict() for e in read_evals(scratch)]
    best = summary.get("best")
    selected = next((i for i, e in enumerate(evaluations) if e["step"] == best["step"]),
                    None) if best else None
    predictions = None if diverged or selected is None else dev_predictions(
        scratch, config.data, str(device))
    steps = read_steps(scratch)
    record = {
        "format": RECORD_FORMAT, "recipe": run.recipe.name, "profile": run.profile,
        "seed": run.seed, "config": comparable(config),
        "evaluations": evaluations, "selected": selected, "dev": predictions,
        "data": {t: data[t] for t in config.tasks},
        "epochs": epoch_statistics(steps, config.tasks),
        "wall_seconds": time.perf_counter() - start,
        "train_seconds": summary.get("seconds"), "resumed": resume,
        **log_statistics(steps, [e["step"] for e in evaluations]),
        "peak_memory_mib": peak / 2**20,
        "peak_memory_kind": "cuda max_memory_allocated" if device.type == "cuda"
        else "peak RSS rise",
        **provenance(device),
        "command": command,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "diverged": diverged,
    }
    write_json(run.record, record)
    (scratch / TRAINING_STATE).unlink(missing_ok=True)  # the record holds what the run gave
    return record
