"""Multi-process training: sharding, and two gloo ranks equal to one process on the same batches."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mtl_tutor.bert import BertConfig, BertModel
from mtl_tutor.bert.config import TINY
from mtl_tutor.bert.load import embedded_minilm_dir
from mtl_tutor.checkpoint import load_training_state
from mtl_tutor.cli import main
from mtl_tutor.data.batching import Batch
from mtl_tutor.distributed import shard, world
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import build_run

REPO = Path(__file__).resolve().parents[1]
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")


def pair_batch(n: int) -> Batch:
    ids = torch.arange(n * 3).reshape(n, 3)
    inputs = {"input_ids_a": ids, "attention_mask_a": torch.ones_like(ids),
              "input_ids_b": ids + 100, "attention_mask_b": torch.ones_like(ids)}
    return Batch("sts", inputs, torch.arange(n, dtype=torch.float32), [f"e{i}" for i in range(n)])


@pytest.mark.parametrize("n, world_size", [(8, 2), (7, 2), (10, 3), (5, 5), (1, 1)])
def test_shards_partition_the_batch_and_their_weights_sum_to_one(n, world_size):
    batch = pair_batch(n)
    shards = [shard(batch, rank, world_size) for rank in range(world_size)]
    assert sum(w for _, w in shards) == pytest.approx(1.0)
    assert [i for part, _ in shards for i in part.ids] == batch.ids  # contiguous, in order
    for part, weight in shards:
        assert weight == pytest.approx(len(part) / n)
        assert max(len(p) for p, _ in shards) - len(part) <= 1
        rows = [batch.ids.index(i) for i in part.ids]
        for key, value in batch.inputs.items():
            assert torch.equal(part.inputs[key], value[rows])
        assert torch.equal(part.labels, batch.labels[rows])


def test_a_rank_without_rows_gets_the_last_row_at_weight_zero():
    batch = pair_batch(2)
    shards = [shard(batch, rank, 3) for rank in range(3)]
    assert [w for _, w in shards] == [0.5, 0.5, 0.0]
    assert shards[2][0].ids == ["e1"] and torch.equal(shards[2][0].labels, torch.tensor([1.0]))


def test_shard_rejects_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="rank must be in"):
        shard(pair_batch(4), 2, 2)


def test_one_process_is_a_world_of_one():
    assert world() == (0, 1)


def test_uncertainty_weighting_is_refused_over_several_processes(synthetic_dir, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setattr("mtl_tutor.training_run.world", lambda: (1, 2))
    config = TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"),
                         combiner="uncertainty", max_steps=1, batch_size=4, max_length=16,
                         progress=False)
    with pytest.raises(ValueError, match="'uncertainty'.*one process"):
        build_run(config)


def dropout_free_backbone(directory: Path) -> Path:
    """A tiny BERT checkpoint directory without dropout, so that runs can be compared exactly."""
    source = embedded_minilm_dir()
    directory.mkdir()
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, directory / name)
    vocab_size = sum(1 for _ in open(source / "vocab.txt", encoding="utf-8"))
    config = BertConfig(**{**TINY.to_dict(), "vocab_size": vocab_size, "hidden_dropout_prob": 0.0,
                           "attention_probs_dropout_prob": 0.0})
    torch.manual_seed(0)
    bert = BertModel(config)
    (directory / "config.json").write_text(json.dumps(config.to_dict()))
    save_file({k: v.contiguous() for k, v in bert.state_dict().items()},
              directory / "model.safetensors")
    return directory


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# PCGrad combines G; FAMO, a loss weighting, goes through G over several processes (its weights
# from the global losses) but takes one backward pass in one, and reads the losses after the step.
@pytest.mark.parametrize("combiner, accumulation", [("pcgrad", 2), ("famo", 1)])
def test_two_gloo_ranks_take_the_steps_of_one_process(combiner, accumulation, synthetic_dir,
                                                      tmp_path):
    backbone = dropout_free_backbone(tmp_path / "backbone")
    args = ["train", "--backbone", str(backbone), "--data", str(synthetic_dir),
            "--combiner", combiner, "--accumulation-steps", str(accumulation),
            "--max-steps", "3", "--batch-size", "8", "--max-length", "32",
            "--dropout-schedule", "0", "0", "--device", "cpu", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0

    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
              "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
              "--master_port", str(free_port()), "-m", "mtl_tutor.cli"]
    done = subprocess.run([*launch, *args, "--out", str(tmp_path / "two")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    one = load_training_state(tmp_path / "one")
    two = load_training_state(tmp_path / "two")
    assert one["step"] == two["step"] == 3
    assert one["model"].keys() == two["model"].keys()
    for name, tensor in one["model"].items():
        torch.testing.assert_close(two["model"][name], tensor, atol=1e-5, rtol=1e-4, msg=name)
    initial = load_file(backbone / "model.safetensors")
    assert any(not torch.allclose(one["model"][f"bert.{k}"], v) for k, v in initial.items())
    logs = [read_jsonl(tmp_path / run / "log.jsonl") for run in ("one", "two")]
    assert [r["step"] for r in logs[1]] == [0, 1, 2]
    for a, b in zip(*logs):  # the losses of the global batches, summed over the ranks
        assert b["losses"] == pytest.approx(a["losses"], abs=1e-5)
