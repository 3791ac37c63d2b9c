"""Training-step time of every combiner divided by the plain ``sum`` step, measured interleaved.

One process, the real MiniLM-L6 backbone (or ``--backbone tiny``), K = 3 real task batches
(SST, Quora, STS at the trainer's batch size). Each repetition times one full ``take_step``
(forward, backward(s), combine, clip, AdamW) with ``sum`` and then with each combiner on the same
batches, so slow drifts of the machine hit both sides alike. Prints the median ratio per
combiner and the memory of the per-task gradient buffer G.

    python bench/combiner_overhead.py [--data ../shared/data/cs224n] [--repeats 3]
        [--combiners pcgrad,gradvac] [--backbone minilm-l6] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mtl_tutor.combiners import COMBINER_NAMES, ColumnGroups, get_combiner
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import build_run, take_step

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cs224n"


def timed_step(run, batches, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    take_step(run, batches, 0)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--backbone", default="minilm-l6")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--combiners", default=",".join(n for n in COMBINER_NAMES if n != "sum"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    names = [n for n in args.combiners.split(",") if n]

    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(backbone=args.backbone, data=args.data, out=out, combiner="sum",
                             batch_size=args.batch_size, device=args.device, progress=False,
                             log_layer_cosines=False)
        run = build_run(config)
    device = run.device
    batches = [[next(run.streams[t]).to(device)] for t in config.tasks]  # one micro-batch each
    combiners = {"sum": run.combiner}
    for name in names:
        combiners[name] = get_combiner(name, seed=0, tasks=config.tasks)
        combiners[name].on_event(ColumnGroups(tuple(run.grads.layer_slices)))
    for name in ("sum", *names):  # warm-up: allocator, lazy state of each combiner
        run.combiner = combiners[name]
        timed_step(run, batches, device)

    times = {name: [] for name in names}
    base = {name: [] for name in names}
    for _ in range(args.repeats):
        for name in names:
            run.combiner = combiners["sum"]
            base[name].append(timed_step(run, batches, device))
            run.combiner = combiners[name]
            times[name].append(timed_step(run, batches, device))

    g_mib = run.grads.G.numel() * run.grads.G.element_size() / 2**20
    tokens = sum(int(v.ne(0).sum()) for [b] in batches for k, v in b.inputs.items()
                 if k.startswith("attention_mask"))
    print(f"backbone {args.backbone}, device {device}, K={len(batches)} tasks, "
          f"batch {args.batch_size} per task ({tokens} real tokens), P={run.grads.num_params:,}")
    print(f"G buffer: {g_mib:.1f} MiB ({len(batches)} x P float32)")
    print(f"median sum step: {statistics.median(t for v in base.values() for t in v):.3f} s")
    print("| combiner | step time / sum step |")
    print("| --- | --- |")
    for name in names:
        ratios = [t / b for t, b in zip(times[name], base[name])]
        print(f"| {name} | {statistics.median(ratios):.2f}x |")


if __name__ == "__main__":
    main()
