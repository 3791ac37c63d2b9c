"""minBERT against ``transformers.BertModel`` on the same weights: outputs and gradients agree.

Tested the way minGPT tests its GPT-2 against Hugging Face: load the same weights into both,
feed the same padded batch, compare. Gradients are compared per parameter through a fixed random
projection of the real-token hidden states and the pooler output. Both attention paths
("padded", "unpadded") are checked; the unpadded one also on awkward length mixes.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from bert_helpers import assert_close_bert, with_attention

from mtl_tutor import BertModel, load_backbone
from mtl_tutor.bert.config import ATTENTION_PATHS
from mtl_tutor.bert.load import embedded_minilm_dir

ATOL = 1e-5       # max |ours - hf| over real-token hidden states and the pooler output (float32)
GRAD_RTOL = 1e-5  # per parameter: ||g_ours - g_hf|| / max(||g_hf||, floor), see bert_helpers

SENTENCES = [
    "the film is a charming, funny and moving portrait of a family.",
    "bad.",
    "How do I learn to play the guitar quickly without a teacher at all?",
    "an utterly forgettable sequel",
]
SECOND = ["it is.", "What is the best way to teach myself guitar?", "no", "a dull sequel"]


def assert_same_outputs_and_gradients(ours, hf, batch: dict) -> None:
    assert_close_bert(ours, hf, batch, atol=ATOL, grad_rtol=GRAD_RTOL)


def hf_twin(bert: BertModel, attn_implementation: str) -> transformers.BertModel:
    """A transformers.BertModel built from minBERT's config, holding a copy of its weights."""
    hf = transformers.BertModel(transformers.BertConfig(**bert.config.to_dict()))
    hf.set_attn_implementation(attn_implementation)
    hf.load_state_dict(bert.state_dict())
    return hf.eval()


@pytest.fixture(scope="module")
def minilm():
    bert, tokenizer = load_backbone("minilm-l6")
    return bert.eval(), tokenizer


@pytest.fixture(scope="module")
def tiny():
    """The tiny random backbone with LayerNorms and biases perturbed so every weight matters."""
    bert, tokenizer = load_backbone("tiny", seed=1)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, p in bert.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return bert.eval(), tokenizer


def sentence_batch(tokenizer, pairs: bool, token_types: bool) -> dict:
    enc = tokenizer(SENTENCES, SECOND if pairs else None, padding=True, return_tensors="pt")
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    if token_types:
        batch["token_type_ids"] = enc["token_type_ids"]
    return batch


@pytest.fixture(scope="module")
def minilm_hf():
    """transformers' own loading of the MiniLM checkpoint, once per attention implementation."""
    return {
        impl: transformers.BertModel.from_pretrained(
            embedded_minilm_dir(), attn_implementation=impl
        ).eval()
        for impl in ("sdpa", "eager")
    }


@pytest.mark.parametrize("attention", ATTENTION_PATHS)
@pytest.mark.parametrize("attn_implementation,pairs,token_types", [
    ("sdpa", True, True),     # sentence pairs with segment ids
    ("sdpa", True, False),    # pairs, segment ids left to their default
    ("eager", False, False),  # single sentences
])
def test_minilm_matches_transformers(minilm, minilm_hf, attention, attn_implementation, pairs,
                                     token_types):
    bert, tokenizer = minilm
    batch = sentence_batch(tokenizer, pairs, token_types)
    assert batch["attention_mask"].sum(1).unique().numel() > 1, "batch must mix lengths"
    hf = minilm_hf[attn_implementation]
    assert_same_outputs_and_gradients(with_attention(bert, attention), hf, batch)


@pytest.mark.parametrize("attention", ATTENTION_PATHS)
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("pairs,token_types", [(False, False), (True, True)])
def test_tiny_matches_transformers(tiny, attention, attn_implementation, pairs, token_types):
    bert, tokenizer = tiny
    batch = sentence_batch(tokenizer, pairs, token_types)
    hf = hf_twin(bert, attn_implementation)
    assert_same_outputs_and_gradients(with_attention(bert, attention), hf, batch)


def batch_of_lengths(lengths: list[int], T: int, vocab_size: int, seed: int = 0) -> dict:
    """Random token ids, right-padded to T, with random segment ids."""
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()  # (B, T)
    ids = torch.randint(1, vocab_size, (B, T), generator=g) * mask
    types = torch.randint(0, 2, (B, T), generator=g) * mask
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


@pytest.mark.parametrize("lengths,T", [
    ([9], 9),               # one sequence, no padding
    ([9], 12),              # one sequence, padded
    ([6, 6, 6], 6),         # all the same length
    ([1, 5, 1, 12, 3], 12),  # length-1 sequences among others
    ([1, 1], 4),            # only length-1 sequences
])
def test_unpadded_matches_padded_and_transformers_on_awkward_lengths(tiny, lengths, T):
    bert, tokenizer = tiny
    batch = batch_of_lengths(lengths, T, tokenizer.vocab_size)
    unpadded, padded = with_attention(bert, "unpadded"), with_attention(bert, "padded")
    assert_same_outputs_and_gradients(unpadded, hf_twin(bert, "sdpa"), batch)
    assert_same_outputs_and_gradients(padded, hf_twin(bert, "sdpa"), batch)
    out = unpadded(**batch)
    pad = ~batch["attention_mask"].bool()
    assert torch.all(out["last_hidden_state"][pad] == 0), "padding positions must be zero"


def test_unpadded_rejects_rows_that_start_with_padding(tiny):
    bert, tokenizer = tiny
    batch = batch_of_lengths([3, 4], 4, tokenizer.vocab_size)
    batch["attention_mask"] = batch["attention_mask"].flip(1)  # left padding
    with pytest.raises(ValueError, match=r"position 0 of every row.*rows \[0\]"):
        with_attention(bert, "unpadded")(**batch)
