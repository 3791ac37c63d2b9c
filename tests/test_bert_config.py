"""``BertConfig``: reading Hugging Face config.json files and validating fields."""

from __future__ import annotations

import json

import pytest

from mtl_tutor import BertConfig, BertModel


def write(tmp_path, raw: dict):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def test_from_json_ignores_keys_it_does_not_model(tmp_path):
    path = write(tmp_path, {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": 48,
        "num_attention_heads": 6, "num_hidden_layers": 3, "intermediate_size": 96,
        "gradient_checkpointing": False, "transformers_version": "4.8.2", "use_cache": True,
    })
    config = BertConfig.from_json(path)
    assert (config.hidden_size, config.num_attention_heads) == (48, 6)
    assert (config.num_hidden_layers, config.intermediate_size) == (3, 96)
    assert config.vocab_size == BertConfig().vocab_size


def test_from_json_rejects_other_model_types(tmp_path):
    with pytest.raises(ValueError, match="model_type is 'gpt2'"):
        BertConfig.from_json(write(tmp_path, {"model_type": "gpt2"}))


def test_from_json_reports_broken_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"hidden_size": 48,\n')
    with pytest.raises(ValueError, match="config.json:2: not valid JSON"):
        BertConfig.from_json(path)


def test_bad_hidden_act_names_the_field(tmp_path):
    with pytest.raises(ValueError, match="hidden_act"):
        BertConfig.from_json(write(tmp_path, {"hidden_act": "swish"}))


def test_head_count_must_divide_width():
    with pytest.raises(ValueError, match=r"hidden_size \(64\).*num_attention_heads \(5\)"):
        BertConfig(hidden_size=64, num_attention_heads=5)


def test_bad_attention_path_names_the_field():
    with pytest.raises(ValueError, match="attention must be one of"):
        BertConfig(attention="flash")


def test_hf_config_gets_the_default_attention_path(tmp_path):
    assert BertConfig.from_json(write(tmp_path, {"hidden_size": 768})).attention == "unpadded"


def test_round_trip_through_dict():
    config = BertConfig(hidden_size=64, num_attention_heads=4, hidden_act="gelu_new")
    assert BertConfig(**config.to_dict()) == config


def test_switching_attention_path_is_validated():
    bert = BertModel(BertConfig(hidden_size=16, num_attention_heads=2, num_hidden_layers=1,
                                intermediate_size=32, vocab_size=50))
    assert bert.use_attention("padded").config.attention == "padded"
    with pytest.raises(ValueError, match="attention must be one of"):
        bert.use_attention("sparse")
