"""bf16 autocast and torch.compile give the results of plain float32 minBERT, within tolerance."""

from __future__ import annotations

import pytest
import torch
from bert_helpers import assert_close_bert, compare, with_attention

from mtl_tutor import load_backbone
from mtl_tutor.bert.speed import bf16_autocast, compile_backbone

SENTENCES = ["a gripping, beautifully shot film", "dull.",
             "What is the fastest way to learn to type without looking at the keyboard?"]


@pytest.fixture(scope="module")
def minilm():
    bert, tokenizer = load_backbone("minilm-l6")
    return bert.eval(), dict(tokenizer(SENTENCES, padding=True, return_tensors="pt"))


@pytest.mark.parametrize("attention", ["padded", "unpadded"])
def test_bf16_autocast_stays_close_to_float32(minilm, attention):
    bert, batch = minilm
    fast = with_attention(bert, attention)
    with bf16_autocast("cpu"):
        assert fast(**batch)["last_hidden_state"].dtype == torch.float32  # LayerNorm's output
    hidden_err, pooled_err, grad_err = compare(
        fast, with_attention(bert, "padded"), batch, context=lambda: bf16_autocast("cpu"))
    # bfloat16 keeps 8 bits of mantissa (~2-3 significant digits), compounded over six layers;
    # measured: hidden 0.012, pooled 0.0015, worst gradient 0.03.
    assert hidden_err < 0.05 and pooled_err < 0.01, (hidden_err, pooled_err)
    assert max(grad_err.values()) < 0.1, max(grad_err.items(), key=lambda kv: kv[1])


def test_bf16_autocast_can_be_switched_off():
    with bf16_autocast("cpu", enabled=False):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with bf16_autocast("cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def compiled_twin(bert, attention: str):
    return compile_backbone(with_attention(bert, attention))


def test_compiled_tiny_matches_eager_on_two_batch_shapes():
    bert, tokenizer = load_backbone("tiny", seed=1)
    compiled = compiled_twin(bert, "unpadded")
    assert [n for n, _ in compiled.named_parameters()] == [n for n, _ in bert.named_parameters()]
    eager = with_attention(bert, "unpadded")
    for texts in (SENTENCES, ["x", "two words", "and a third, longer one", "y"]):
        batch = dict(tokenizer(texts, padding=True, return_tensors="pt"))
        assert_close_bert(compiled, eager, batch, atol=1e-5, grad_rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["padded", "unpadded"])
def test_compiled_minilm_matches_eager(minilm, attention):
    bert, batch = minilm
    compiled = compiled_twin(bert, attention)
    assert_close_bert(compiled, with_attention(bert, attention), batch, atol=1e-5,
                      grad_rtol=1e-4)
