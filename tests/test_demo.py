"""The demo: its STS head starts from the pretrained similarity, and its one-line conflict
summary counts what the log says."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mtl_tutor.bert import load_backbone
from mtl_tutor.data import load_task
from mtl_tutor.demo import conflict_summary, demo_config, write_demo_corpus
from mtl_tutor.evaluate import evaluate, ordered_batches
from mtl_tutor.model import build_model

FIXTURES = Path(__file__).parent / "fixtures" / "runs_before_typed_options"


def untrained_sts_pearson(config):
    torch.manual_seed(config.seed)
    bert, tokenizer = load_backbone(config.backbone)
    model = build_model(bert, config).eval()
    batches = ordered_batches(load_task(config.data, "sts", "dev"), tokenizer, 32,
                              pair_encoding=config.encoding_of("sts"),
                              max_length=config.max_length)
    return evaluate(model, {"sts": list(batches)})["sts_pearson"]


def test_the_demo_sts_head_starts_from_the_pretrained_similarity(tmp_path):
    # The demo's reason for the cosine head: before any step it already ranks the synthetic
    # STS pairs (Pearson 0.73 on this corpus), where the default MLP head starts from noise.
    config = demo_config(tmp_path)
    write_demo_corpus(config)
    cosine = untrained_sts_pearson(config)
    mlp = untrained_sts_pearson(replace(config, heads={}))
    assert cosine > 0.5 and cosine - mlp > 0.4, (cosine, mlp)


def step(number, cosines):
    return {"step": number, "epoch": 0, "lr": 1e-4, "losses": {"a": 1.0, "b": 1.0, "c": 1.0},
            "cosines": cosines, "conflict": min(cosines.values()) < 0, "time": 0.1 * number}


def test_conflict_summary_counts_steps_and_pairs(tmp_path):
    records = [step(0, {"a/b": -0.1, "a/c": 0.2}), step(1, {"a/b": 0.3, "a/c": 0.2}),
               step(2, {"a/b": -0.2, "a/c": -0.4}), step(3, {"a/b": 0.1, "a/c": 0.1})]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    line = conflict_summary(log)
    assert "2/4 steps (50%)" in line and "a/b 2" in line and "a/c 1" in line


@pytest.mark.parametrize("run", ["gradvac", "sum"])
def test_conflict_summary_of_a_log_written_before_records_were_typed(run):
    lines = [json.loads(line) for line in (FIXTURES / run / "log.jsonl").read_text().splitlines()]
    conflicted = sum(r["conflict"] for r in lines if r.get("cosines"))
    line = conflict_summary(FIXTURES / run / "log.jsonl")
    if run == "sum":
        assert "no per-task gradients" in line
    else:
        assert f"{conflicted}/{len(lines)} steps" in line
