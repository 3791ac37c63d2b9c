"""Training-step time of each leaderboard recipe divided by the baseline recipe's, interleaved.

For every recipe of a profile (seed 0, the real backbone and data): build its run and the
baseline's, then at ``--repeats`` positions spread over the recipe's run (so a warm-up, a
sequential epoch's tasks or accumulation are sampled as the run meets them) time one full
``take_step`` of the baseline (a round-robin step over the three tasks) and, right after it, the
recipe's step at that position. The ratio of each pair is kept; its median is the recipe's step
cost in baseline steps, which ``mtl-tutor leaderboard --plan`` multiplies by the profile's
measured baseline step. A recipe with projected attention layers is also measured without them
("NAME without PALs"), which the claim "PALs train about 50% faster per epoch" reads.

Writes ``results/bench/recipe_step_cost.json`` (``--json``), merging into what is there, so
that ``--only`` can measure a few recipes at a time.

    python bench/recipe_step_cost.py [--profile cpu] [--only NAME,NAME] [--repeats 5]
        [--data ../shared/data/cs224n] [--configs configs] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import shlex
import statistics
import sys
import tempfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from mtl_tutor.leaderboard import BASELINE, load_board
from mtl_tutor.leaderboard.records import provenance, write_json
from mtl_tutor.step_cost import timed_step
from mtl_tutor.train import Run, build_run

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cs224n"


def step_batches(run: Run, step: int) -> list[list]:
    """The micro-batches of the tasks the run's sampler gives step ``step``."""
    A = run.config.accumulation_steps
    return [[next(run.streams[t]).to(run.device) for _ in range(A)]
            for t in run.sampler.tasks_for_step(step)]


def measure(base: Run, run: Run, repeats: int) -> tuple[list[float], list[float]]:
    """(recipe step / the baseline step timed just before it, per position; baseline seconds)."""
    positions = [int((r + 0.5) * run.total_steps / repeats) for r in range(repeats)]
    everything = list(base.config.tasks)
    timed_step(base, [[next(base.streams[t]).to(base.device)] for t in everything], base.device)
    timed_step(run, step_batches(run, positions[0]), run.device)  # warm-up: allocator, state
    ratios, seconds = [], []
    for position in positions:
        base_batches = [[next(base.streams[t]).to(base.device)] for t in everything]
        seconds.append(timed_step(base, base_batches, base.device))
        ratios.append(timed_step(run, step_batches(run, position), run.device) / seconds[-1])
    return ratios, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--configs", nargs="+", default=["configs"])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--only", default="", help="recipe names, comma-separated")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="results/bench/recipe_step_cost.json")
    args = parser.parse_args()

    board = load_board(args.profile, args.configs, args.data)
    first = {}
    for run in board.runs:
        first.setdefault(run.recipe.name, run.config)
    only = [n for n in args.only.split(",") if n]
    unknown = [n for n in only if n not in first]
    if unknown:
        raise SystemExit(f"--only: no recipe {unknown[0]!r}")
    variants = {}
    for name, config in first.items():
        if name == BASELINE or (only and name not in only):
            continue
        variants[name] = config
        if config.pals is not None:
            variants[f"{name} without PALs"] = replace(config, pals=None)

    path = Path(args.json)
    result = json.loads(path.read_text()) if path.exists() else {
        "bench": "recipe_step_cost", "reference": BASELINE, "ratios": {},
        "reference_seconds": {}}
    if result.get("profile", args.profile) != args.profile:
        raise SystemExit(f"{path} measured profile {result['profile']!r}; use another --json")
    with tempfile.TemporaryDirectory() as scratch:
        base = build_run(replace(first[BASELINE], out=f"{scratch}/base", progress=False))
        for number, (name, config) in enumerate(variants.items(), 1):
            run = build_run(replace(config, out=f"{scratch}/{number}", progress=False))
            ratios, seconds = measure(base, run, args.repeats)
            result["ratios"][name], result["reference_seconds"][name] = ratios, seconds
            print(f"[{number}/{len(variants)}] {name}: {statistics.median(ratios):.2f}x the "
                  f"baseline step ({statistics.median(seconds):.2f} s)", flush=True)
            del run
            gc.collect()
    result.update({"profile": args.profile, "repeats": args.repeats, **provenance(base.device),
                   "command": shlex.join(["python", *sys.argv]),
                   "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
