"""A damaged file of a run or a backbone is named and called damaged, never loaded unsafely:
truncated or foreign checkpoints, unreadable safetensors, invalid JSON, weights that hold NaN or
infinite values, and a flipped bit that makes every output NaN."""

import io
import json
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch

from mtl_tutor.bert.load import load_backbone
from mtl_tutor.checkpoint import load_run, load_training_state
from mtl_tutor.cli import main
from mtl_tutor.damaged_files import DamagedFileError
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import train


@pytest.fixture
def run(finished_run, tmp_path) -> Path:
    """A copy of the finished run to damage."""
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


def pickled(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def flip_bit_30(path: Path, tensor: str, index: int = 0) -> float:
    """Flip bit 30 (the exponent's top bit) of float32 element ``index`` of ``tensor`` in a
    safetensors file; return the new value (1.0 becomes about 3.4e38)."""
    raw = bytearray(path.read_bytes())
    size = struct.unpack("<Q", raw[:8])[0]
    start = 8 + size + json.loads(raw[8:8 + size])[tensor]["data_offsets"][0] + 4 * index
    word = struct.unpack("<I", raw[start:start + 4])[0] ^ (1 << 30)
    raw[start:start + 4] = struct.pack("<I", word)
    path.write_bytes(bytes(raw))
    return struct.unpack("<f", struct.pack("<I", word))[0]


@pytest.mark.parametrize("damage", ["truncated", "random bytes", "empty", "a pickled object",
                                    "a state without a model"])
def test_a_damaged_checkpoint_is_named_and_never_loaded_unsafely(damage, run):
    path = run / "checkpoint.pt"
    content = path.read_bytes()
    path.write_bytes({"truncated": content[:len(content) // 2], "random bytes": os.urandom(4096),
                      "empty": b"", "a pickled object": pickled({"step": slice(1, 2)}),
                      "a state without a model": pickled({"step": 2})}[damage])
    with pytest.raises(DamagedFileError) as error:
        load_training_state(run)
    message = str(error.value)
    assert message.startswith(f"{path} is damaged: ") and "weights_only" not in message


def test_a_checkpoint_whose_model_holds_nan_is_damaged(run):
    state = load_training_state(run)
    name = next(iter(state["model"]))
    state["model"][name] = state["model"][name].clone().fill_(float("nan"))
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(DamagedFileError, match=f"tensors hold NaN or infinite values \\(first: "
                                               f"{name}\\)"):
        load_training_state(run)


def test_a_checkpoint_of_another_model_is_refused_when_resuming(run, synthetic_dir):
    state = load_training_state(run)
    del state["config"]  # as checkpoints written before configs were saved in them
    state["model"] = {k: v for k, v in state["model"].items() if "heads" not in k}
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(DamagedFileError, match="does not hold this run's state"):
        train(TrainConfig.of_run(run), resume=True)


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
def test_a_damaged_model_file_is_named(damage, run):
    path = run / "model.safetensors"
    content = path.read_bytes()
    path.write_bytes(content[:len(content) // 2] if damage == "truncated" else os.urandom(4096))
    with pytest.raises(DamagedFileError, match=f"{path} is damaged: not a readable safetensors"):
        load_run(run)


def test_a_model_file_with_a_nan_weight_is_named(run):
    path = run / "model.safetensors"
    from safetensors.torch import load_file, save_file

    weights = load_file(path)
    weights["bert.pooler.dense.bias"][3] = float("inf")
    save_file(weights, path)
    with pytest.raises(DamagedFileError, match="1 of .* tensors hold NaN or infinite values "
                                               r"\(first: bert.pooler.dense.bias\)"):
        load_run(run)


def test_a_flipped_bit_whose_outputs_are_nan_is_said_by_eval_and_predict(run, synthetic_dir,
                                                                        tmp_path, capsys):
    assert flip_bit_30(run / "model.safetensors", "bert.embeddings.LayerNorm.weight") > 1e38
    for command in (["eval"], ["predict", "--out", str(tmp_path / "predictions")]):
        assert main([*command, "--run", str(run), "--data", str(synthetic_dir)]) == 3
        err = capsys.readouterr().err
        assert err.startswith(f"error: {run / 'model.safetensors'} is damaged: its weights make "
                              "the outputs for ") and "NaN or infinite" in err
    assert not (tmp_path / "predictions").exists()


@pytest.mark.parametrize("name, text", [("run_config.json", "{\"lr\": 0.1,"),
                                        ("run_config.json", "[1, 2]"),
                                        ("heads.json", "{not json"),
                                        ("bert_config.json", "{\"hidden_size\": ")])
def test_an_invalid_json_file_of_a_run_is_named(name, text, run):
    (run / name).write_text(text)
    with pytest.raises(DamagedFileError, match=f"{run / name} is damaged: "):
        load_run(run)


def test_a_backbone_with_damaged_weights_is_named(tmp_path):
    bert, tokenizer = load_backbone("tiny")
    directory = tmp_path / "backbone"
    tokenizer.save_pretrained(str(directory))
    (directory / "config.json").write_text(json.dumps(bert.config.to_dict()))
    (directory / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(DamagedFileError, match="model.safetensors is damaged"):
        load_backbone(str(directory))
