"""``make demo``: the embedded MiniLM-L6 trained with PCGrad on the synthetic corpus.

Runs offline in a few minutes on a laptop CPU and prints, per epoch, the dev metrics, then the
final metrics as JSON and how often the task gradients conflicted.
"""

from __future__ import annotations

import json
from pathlib import Path

from .data import write_synthetic_corpus
from .run_config import TrainConfig
from .train import train


def conflict_summary(log_path: Path) -> str:
    """One line: in how many steps some pair of task gradients had a negative cosine."""
    records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    with_cosines = [r for r in records if r.get("cosines")]
    if not with_cosines:
        return "conflict: no per-task gradients were logged (a loss-weighting combiner)"
    conflicted = sum(r["conflict"] for r in with_cosines)
    pairs = {p: sum(r["cosines"][p] < 0 for r in with_cosines) for p in with_cosines[0]["cosines"]}
    per_pair = ", ".join(f"{p} {n}" for p, n in pairs.items())
    return (f"conflict: {conflicted}/{len(with_cosines)} steps "
            f"({conflicted / len(with_cosines):.0%}) had a task pair with negative cosine "
            f"(per pair: {per_pair})")


def demo_config(out: Path, seed: int = 0) -> TrainConfig:
    """PCGrad, 2 short epochs; STS scored by the cosine head ``5 relu(cos(u, v))``, which starts
    from the pretrained embeddings' similarity where an MLP head would start from noise."""
    return TrainConfig(
        backbone="minilm-l6", data=str(out / "data"), out=str(out / "run"), combiner="pcgrad",
        heads={"sts": {"name": "cosine"}}, epochs=2, batch_size=16, max_length=48, lr=1e-4,
        seed=seed,
    )


def run_demo(out: Path, seed: int = 0) -> dict:
    config = demo_config(out, seed)
    write_synthetic_corpus(config.data, n_train=320, n_dev=160, n_test=80, seed=seed)
    print(f"synthetic corpus in {config.data}; training {config.backbone} with {config.combiner}")
    summary = train(config)
    print(json.dumps(summary["history"][-1]))
    print(conflict_summary(Path(config.out) / "log.jsonl"))
    return summary
