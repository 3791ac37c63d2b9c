"""Cost of each combiner's call alone, against ``G.sum(0)``, at MiniLM-L6 size.

For K = 3 tasks and P = 22.7M float32 shared parameters (all-MiniLM-L6-v2), each combiner runs
in its own process: it is timed interleaved with ``G.sum(0)`` (the ``sum`` baseline), and we
report the ratio of median times and the peak memory the combiner adds beyond ``G`` and one
P-long direction: its persistent state plus its per-call temporaries (on CUDA from the
allocator's peak; on CPU from the process's peak resident set, so only rises are seen). Loss
weightings (``needs_gradients`` False) never receive G in training: the trainer takes one
backward pass instead, so their row is only the cost of the call, for reference.

    python bench/combiner_cost.py [--device cuda] [--repeats 5] [--params 22700000]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from mtl_tutor.combiners import COMBINER_NAMES, ColumnGroups, get_combiner

K = 3
LAYER_GROUPS = 7  # embeddings + 6 encoder layers, the ColumnGroups the trainer sends


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    synchronise(device)
    start = time.perf_counter()
    fn()
    synchronise(device)
    return time.perf_counter() - start


def peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def measure(name: str, P: int, repeats: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    G = torch.randn(K, P, device=device)
    losses = torch.rand(K, device=device) + 0.5
    combiner = get_combiner(name, seed=0, tasks=[f"task{k}" for k in range(K)])
    bounds = torch.linspace(0, P, LAYER_GROUPS + 1).long().tolist()
    groups = [(f"group{i}", slice(a, b)) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    combiner.on_event(ColumnGroups(tuple(groups)))
    G.sum(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    baseline = peak_bytes(device)  # G and one direction; the combiner's state counts as extra
    combiner(G, losses)  # warm-up: lazily created state, solver imports
    sums, calls = [], []
    for _ in range(repeats):
        sums.append(timed(lambda: G.sum(0), device))
        calls.append(timed(lambda: combiner(G, losses), device))
    return {
        "name": name,
        "loss_weighting": not combiner.needs_gradients,
        "sum_ms": 1e3 * statistics.median(sums),
        "call_ms": 1e3 * statistics.median(calls),
        "extra_mb": max(0, peak_bytes(device) - baseline) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--params", type=int, default=22_700_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run a single combiner (child process)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.one:
        print(json.dumps(measure(args.one, args.params, args.repeats, device)))
        return
    print(f"K={K}, P={args.params:,} float32 on {device}; median of {args.repeats}, interleaved")
    print(f"{'combiner':<14}{'call ms':>10}{'sum ms':>9}{'ratio':>8}{'extra MB':>10}")
    for name in COMBINER_NAMES:
        child = subprocess.run(
            [sys.executable, __file__, "--one", name, "--params", str(args.params),
             "--repeats", str(args.repeats), "--device", args.device],
            capture_output=True, text=True,
        )
        if child.returncode != 0:
            last = (child.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"{name:<14}failed (exit {child.returncode}): {last}")
            continue
        row = json.loads(child.stdout.strip().splitlines()[-1])
        note = "  (loss weighting: one backward in training)" if row["loss_weighting"] else ""
        print(f"{name:<14}{row['call_ms']:>10.1f}{row['sum_ms']:>9.1f}"
              f"{row['call_ms'] / row['sum_ms']:>8.2f}{row['extra_mb']:>10.0f}{note}")


if __name__ == "__main__":
    main()
