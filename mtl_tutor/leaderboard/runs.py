"""Leaderboard runs: train one seed of a recipe (or reuse its recorded result) and measure it.

Each run trains into ``OUT/NAME/seedS`` and leaves ``result.json`` there: the best dev metrics,
the wall time of ``train`` (data loading and evaluations included), steps per second of the
training steps alone (from ``log.jsonl``, the steps that follow an evaluation left out), the peak
memory (CUDA ``max_memory_allocated``; on the CPU the rise of the process's peak resident set
size, whose kernel high-water mark is reset before each run on Linux), and conflict statistics
from the log: the fraction of steps with some pair of task gradients at a negative cosine
(:func:`~mtl_tutor.run_log.conflict_fraction`), and per epoch the fraction of steps in which
the combiner moved the summed direction by more than 1% (``changed > 0.01``). Both need
per-task gradients: loss-weighting combiners (``sum``, ``uncertainty``, ...) take one backward
pass and log none, and steps of a single task have no pair. A run that diverges (NaN or infinite
loss) is recorded as such. A run with ``result.json`` is reused when its recorded configuration
matches; a run interrupted after a checkpoint continues from it.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch

from ..run_config import TrainConfig
from ..run_log import (
    StepRecord,
    changed_steps,
    conflict_fraction,
    read_evals,
    read_steps,
    step_records,
)
from ..train import TrainingDiverged, resolve_device, train
from .recipes import Recipe

CHANGED_THRESHOLD = 0.01  # "the combiner changed the summed direction": |d - sum g| > 1% |sum g|
UNCOMPARED_KEYS = ("out", "progress")  # may differ when a finished run is reused


def log_statistics(records: Sequence[StepRecord | Mapping], eval_steps: Iterable[int]) -> dict:
    """Steps per second and conflict statistics from ``log.jsonl`` records.

    eval_steps: the ``step`` of each evaluation (eval.jsonl); the record that follows one is
    left out of the timing, since its time includes the evaluation and the checkpoint.
    """
    records, eval_steps = step_records(records), set(eval_steps)
    seconds, counted, previous = 0.0, 0, 0.0
    for record in records:
        if record.step not in eval_steps:
            seconds, counted = seconds + record.time - previous, counted + 1
        previous = record.time
    by_epoch: dict[int, list[StepRecord]] = {}
    for record in records:
        if record.has_pairs:
            by_epoch.setdefault(record.epoch, []).append(record)
    changed = {epoch: changed_steps(group, CHANGED_THRESHOLD)
               for epoch, group in sorted(by_epoch.items())}
    return {
        "steps": len(records),
        "steps_per_second": counted / seconds if seconds > 0 else None,
        "conflict_fraction": conflict_fraction(records),
        "changed_fraction_per_epoch": {e: n / total for e, (n, total) in changed.items()},
    }


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


def measure_run(config: TrainConfig) -> dict:
    """Train ``config`` (continuing from its checkpoint if there is one) and measure it."""
    run_dir = Path(config.out)
    device = resolve_device(config.device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = reset_peak_rss()
    start = time.perf_counter()
    summary, diverged = {}, None
    try:
        summary = train(config, resume=(run_dir / "checkpoint.pt").exists())
    except TrainingDiverged as e:  # recorded; the other runs go on
        diverged = str(e)
    wall = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else peak_rss_bytes() - rss_before)
    best = summary.get("best") or {}
    return {
        "diverged": diverged,
        "metrics": {k: v for k, v in best.items() if k not in ("step", "epoch")},
        "best_step": best.get("step"),
        "wall_seconds": wall,
        "peak_memory_mib": peak / 2**20,
        "peak_memory_kind": "cuda max_memory_allocated" if device.type == "cuda"
        else "peak RSS rise",
        **log_statistics(read_steps(run_dir), [e.step for e in read_evals(run_dir)]),
    }


def comparable(config: TrainConfig) -> dict:
    """The settings a reused result must have been run with."""
    return {k: v for k, v in config.to_dict().items() if k not in UNCOMPARED_KEYS}


def run_once(recipe: Recipe, config: TrainConfig) -> tuple[dict, bool]:
    """The result of one seed's run: read from ``result.json`` if finished, else trained.
    Returns (result, whether it was trained now). A recorded configuration is read as
    TrainConfig reads it (fields it predates take their defaults)."""
    path = Path(config.out) / "result.json"
    if path.exists():
        result = json.loads(path.read_text(encoding="utf-8"))
        try:
            recorded = comparable(TrainConfig.from_dict(result["config"]))
        except ValueError as e:
            raise ValueError(f"{path} records a configuration this version refuses ({e}); use "
                             f"another --out or delete that run") from e
        differing = sorted(k for k, v in comparable(config).items() if recorded[k] != v)
        if differing:
            raise ValueError(f"{path} was run with other values of {differing}; use another "
                             f"--out or delete that run")
        return result, False
    result = {"name": recipe.name, "seed": config.seed, "config": comparable(config),
              **measure_run(config)}
    result = json.loads(json.dumps(result))  # as a later invocation reads it (string keys)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return result, True
