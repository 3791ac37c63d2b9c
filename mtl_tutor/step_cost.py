"""What a combiner costs in training: its step's time divided by the plain ``sum`` step's.

One full training step each (forward, backward pass(es), combine, statistics, clipping, AdamW:
:func:`~mtl_tutor.train.take_step`) on the same batches, interleaved: every step of a combiner
follows a ``sum`` step, so that slow drifts of the machine's load hit both alike, and the ratio
of the pair is kept. After one warm-up step per method (the allocator, a combiner's lazy state),
the median ratio over the repeats is the combiner's cost. ``bench/combiner_overhead.py`` prints
it for every combiner on the real backbone and data; the notebooks call the same function.
"""

from __future__ import annotations

import statistics
import time

import torch

from .combiners import Combiner
from .train import Run, take_step


def timed_step(run: Run, batches: list[list], device: torch.device) -> float:
    """Seconds of one ``take_step`` of ``run`` on ``batches`` (synchronised on CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    take_step(run, batches, 0)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def step_time_samples(run: Run, batches: list[list], combiners: dict[str, Combiner],
                      repeats: int = 3) -> tuple[dict[str, list[float]], list[float]]:
    """(per combiner, its step time / the sum step timed just before it, one per repetition;
    the sum steps' seconds).

    run: a :class:`~mtl_tutor.train.Run` built with ``combiner="sum"``; its combiner is
    swapped for each of ``combiners`` (attached to ``run.grads.layer_slices`` by the caller) and
    restored at the end. batches: one list of micro-batches per task, on the run's device.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    base_combiner = run.combiner
    if base_combiner.name != "sum":
        raise ValueError(f"run must be built with combiner='sum', got {base_combiner.name!r}")
    try:
        for combiner in (base_combiner, *combiners.values()):  # warm-up
            run.combiner = combiner
            timed_step(run, batches, run.device)
        ratios = {name: [] for name in combiners}
        base = []
        for _ in range(repeats):
            for name, combiner in combiners.items():
                run.combiner = base_combiner
                base.append(timed_step(run, batches, run.device))
                run.combiner = combiner
                ratios[name].append(timed_step(run, batches, run.device) / base[-1])
    finally:
        run.combiner = base_combiner
    return ratios, base


def step_time_ratios(run: Run, batches: list[list], combiners: dict[str, Combiner],
                     repeats: int = 3) -> tuple[dict[str, float], float]:
    """(median step time / sum step time per combiner, median sum step in seconds), from
    :func:`step_time_samples` (same arguments)."""
    ratios, base = step_time_samples(run, batches, combiners, repeats)
    return {name: statistics.median(r) for name, r in ratios.items()}, statistics.median(base)
