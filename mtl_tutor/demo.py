"""``make demo``: the embedded MiniLM-L6 trained with PCGrad on the synthetic corpus.

Runs offline in a few minutes on a laptop CPU and prints, per epoch, the dev metrics, then the
final metrics as JSON and how often the task gradients conflicted.
"""

from __future__ import annotations

import json
from pathlib import Path

from .data import write_synthetic_corpus
from .run_config import TrainConfig
from .run_log import conflict_steps, read_steps
from .train import train


def conflict_summary(log_path: Path) -> str:
    """One line: in how many steps some pair of task gradients had a negative cosine."""
    records = read_steps(log_path)
    conflicted, steps = conflict_steps(records)
    if not steps:
        return "conflict: no per-task gradients were logged (a loss-weighting combiner)"
    pairs = next(r.cosines for r in records if r.has_pairs)
    per_pair = ", ".join(f"{p} {conflict_steps(records, p)[0]}" for p in pairs)
    return (f"conflict: {conflicted}/{steps} steps ({conflicted / steps:.0%}) had a task pair "
            f"with negative cosine (per pair: {per_pair})")


def demo_config(out: Path, seed: int = 0) -> TrainConfig:
    """PCGrad, 2 short epochs; STS scored by the cosine head ``5 relu(cos(u, v))``, which starts
    from the pretrained embeddings' similarity where an MLP head would start from noise."""
    return TrainConfig(
        backbone="minilm-l6", data=str(out / "data"), out=str(out / "run"), combiner="pcgrad",
        heads={"sts": {"name": "cosine"}}, epochs=2, batch_size=16, max_length=48, lr=1e-4,
        seed=seed,
    )


def write_demo_corpus(config: TrainConfig) -> Path:
    """The demo's synthetic corpus (320 / 160 / 80 rows per task) in ``config.data``."""
    return write_synthetic_corpus(config.data, n_train=320, n_dev=160, n_test=80,
                                  seed=config.seed)


def run_demo(out: Path, seed: int = 0) -> dict:
    """Write the corpus into ``out/data`` and train into ``out/run``, replacing the run an
    earlier demo left there (a directory that holds anything else is refused)."""
    config = demo_config(out, seed)
    write_demo_corpus(config)
    print(f"synthetic corpus in {config.data}; training {config.backbone} with {config.combiner}")
    summary = train(config, overwrite=True)
    print(json.dumps(summary["history"][-1]))
    print(conflict_summary(Path(config.out) / "log.jsonl"))
    return summary
