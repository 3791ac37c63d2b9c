"""The demo's pieces: its configuration and the one-line conflict summary."""

import json

from mtl_tutor.demo import conflict_summary, demo_config


def test_demo_trains_the_embedded_backbone_with_pcgrad(tmp_path):
    config = demo_config(tmp_path)
    assert config.backbone == "minilm-l6" and config.combiner == "pcgrad"
    assert config.data.startswith(str(tmp_path)) and config.out.startswith(str(tmp_path))


def test_conflict_summary_counts_steps_and_pairs(tmp_path):
    records = [
        {"step": 0, "cosines": {"a/b": -0.1, "a/c": 0.2}, "conflict": True},
        {"step": 1, "cosines": {"a/b": 0.3, "a/c": 0.2}, "conflict": False},
        {"step": 2, "cosines": {"a/b": -0.2, "a/c": -0.4}, "conflict": True},
        {"step": 3, "cosines": {"a/b": 0.1, "a/c": 0.1}, "conflict": False},
    ]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    line = conflict_summary(log)
    assert "2/4 steps (50%)" in line and "a/b 2" in line and "a/c 1" in line


def test_conflict_summary_without_per_task_gradients(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"step": 0, "losses": {"a": 1.0}}) + "\n")
    assert "no per-task gradients" in conflict_summary(log)
