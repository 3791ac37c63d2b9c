"""``load_backbone``: checkpoint directories, prefixed weights, broken checkpoints, the hub."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from mtl_tutor import load_backbone
from mtl_tutor.bert.load import bert_from_dir

TINY_HF = transformers.BertConfig(
    vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=64, max_position_embeddings=64,
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_backbone("tiny")[1]


def save_checkpoint(model: transformers.PreTrainedModel, tokenizer, directory) -> None:
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def assert_same_as(bert, hf: transformers.BertModel, tokenizer) -> None:
    batch = tokenizer(["a short one", "and a somewhat longer sentence"], padding=True,
                      return_tensors="pt")
    bert.eval()
    with torch.no_grad():
        out, ref = bert(**batch), hf.eval()(**batch)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(out["last_hidden_state"][real], ref.last_hidden_state[real],
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(out["pooler_output"], ref.pooler_output, atol=1e-5, rtol=0)


def test_minilm_embedded_loads_offline():
    bert, tokenizer = load_backbone("minilm-l6")
    assert bert.config.hidden_size == 384 and bert.config.num_hidden_layers == 6
    assert tokenizer("hello")["input_ids"][0] == tokenizer.cls_token_id


def test_tiny_is_seeded_and_small():
    a, _ = load_backbone("tiny", seed=3)
    b, _ = load_backbone("tiny", seed=3)
    c, _ = load_backbone("tiny", seed=4)
    wa, wb, wc = (m.encoder.layer[0].output.dense.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.config.num_hidden_layers == 2


def test_local_checkpoint_directory(tmp_path, tokenizer):
    torch.manual_seed(0)
    hf = transformers.BertModel(TINY_HF)
    save_checkpoint(hf, tokenizer, tmp_path)
    bert, loaded_tokenizer = load_backbone(str(tmp_path))
    assert loaded_tokenizer.vocab_size == tokenizer.vocab_size
    assert_same_as(bert, hf, tokenizer)


def test_checkpoint_of_a_task_model_with_bert_prefix(tmp_path, tokenizer):
    torch.manual_seed(0)
    task_model = transformers.BertForSequenceClassification(TINY_HF)
    save_checkpoint(task_model, tokenizer, tmp_path)
    keys = load_file(tmp_path / "model.safetensors")
    assert any(k.startswith("bert.") for k in keys)
    assert any(k.startswith("classifier") for k in keys)
    bert, _ = load_backbone(str(tmp_path))
    assert_same_as(bert, task_model.bert, tokenizer)


def test_pytorch_model_bin(tmp_path, tokenizer):
    torch.manual_seed(0)
    hf = transformers.BertModel(TINY_HF)
    save_checkpoint(hf, tokenizer, tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    assert_same_as(bert_from_dir(tmp_path), hf, tokenizer)


@pytest.fixture
def saved_tiny(tmp_path, tokenizer):
    save_checkpoint(transformers.BertModel(TINY_HF), tokenizer, tmp_path)
    return tmp_path


def test_missing_weight_names_the_file(saved_tiny):
    weights = saved_tiny / "model.safetensors"
    state = load_file(weights)
    del state["encoder.layer.1.output.dense.weight"]
    save_file(state, weights)
    with pytest.raises(ValueError, match="model.safetensors.*encoder.layer.1.output.dense.weight"):
        load_backbone(str(saved_tiny))


def test_wrong_shape_names_the_file_and_the_weight(saved_tiny):
    config = json.loads((saved_tiny / "config.json").read_text())
    config["intermediate_size"] = 96
    (saved_tiny / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"model.safetensors: weight encoder.layer.0.intermediate"):
        load_backbone(str(saved_tiny))


def test_directory_without_weights(saved_tiny):
    (saved_tiny / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors or pytorch_model.bin"):
        load_backbone(str(saved_tiny))


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a checkpoint directory"):
        load_backbone(str(tmp_path / "no-such-checkpoint"))


def test_hub_name_offline_says_why(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="mtl-tutor-tests/no-such-model.*HF_HUB_OFFLINE is set"):
        load_backbone("mtl-tutor-tests/no-such-model")
