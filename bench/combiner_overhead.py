"""Training-step time of every combiner divided by the plain ``sum`` step, measured interleaved.

One process, the real MiniLM-L6 backbone (or ``--backbone tiny``), K = 3 real task batches
(SST, Quora, STS at the trainer's batch size). The measurement is
:func:`mtl_tutor.step_cost.step_time_ratios`: each repetition times one full ``take_step``
(forward, backward(s), combine, clip, AdamW) with ``sum`` and then with each combiner on the same
batches, so slow drifts of the machine hit both sides alike. Prints the median ratio per
combiner and the memory of the per-task gradient buffer G, and writes every repetition's ratios
to ``results/bench/combiner_overhead.json`` (``--json``), which the leaderboard's claims table
reads (mtl_tutor.leaderboard.verdicts).

    python bench/combiner_overhead.py [--data ../shared/data/cs224n] [--repeats 3]
        [--combiners pcgrad,gradvac] [--backbone minilm-l6] [--device cuda] [--json PATH]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from mtl_tutor.combiners import COMBINER_NAMES, ColumnGroups, get_combiner
from mtl_tutor.leaderboard.records import provenance, write_json
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.step_cost import step_time_samples
from mtl_tutor.train import build_run

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cs224n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--backbone", default="minilm-l6")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--combiners", default=",".join(n for n in COMBINER_NAMES if n != "sum"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default="results/bench/combiner_overhead.json",
                        help="where the repetitions' ratios go")
    args = parser.parse_args()
    names = [n for n in args.combiners.split(",") if n]

    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(backbone=args.backbone, data=args.data, out=out, combiner="sum",
                             batch_size=args.batch_size, device=args.device, progress=False,
                             log_layer_cosines=False)
        run = build_run(config)
    device = run.device
    batches = [[next(run.streams[t]).to(device)] for t in config.tasks]  # one micro-batch each
    combiners = {}
    for name in names:
        combiners[name] = get_combiner(name, seed=0, tasks=config.tasks)
        combiners[name].on_event(ColumnGroups(tuple(run.grads.layer_slices)))
    samples, sum_steps = step_time_samples(run, batches, combiners, args.repeats)
    ratios = {name: statistics.median(r) for name, r in samples.items()}
    sum_seconds = statistics.median(sum_steps)

    g_mib = run.grads.G.numel() * run.grads.G.element_size() / 2**20
    tokens = sum(int(v.ne(0).sum()) for [b] in batches for k, v in b.inputs.items()
                 if k.startswith("attention_mask"))
    print(f"backbone {args.backbone}, device {device}, K={len(batches)} tasks, "
          f"batch {args.batch_size} per task ({tokens} real tokens), P={run.grads.num_params:,}")
    print(f"G buffer: {g_mib:.1f} MiB ({len(batches)} x P float32)")
    print(f"median sum step: {sum_seconds:.3f} s")
    print("| combiner | step time / sum step |")
    print("| --- | --- |")
    for name in names:
        print(f"| {name} | {ratios[name]:.2f}x |")
    write_json(args.json, {
        "bench": "combiner_overhead", "reference": "sum", "repeats": args.repeats,
        "ratios": samples, "reference_seconds": sum_steps, "backbone": args.backbone,
        "batch_size": args.batch_size, **provenance(device),
        "command": shlex.join(["python", *sys.argv]),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
