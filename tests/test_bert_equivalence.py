"""minBERT against ``transformers.BertModel`` on the same weights: outputs and gradients agree.

Tested the way minGPT tests its GPT-2 against Hugging Face: load the same weights into both,
feed the same padded batch, compare. Gradients are compared per parameter through a fixed random
projection of the real-token hidden states and the pooler output.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from mtl_tutor import BertModel, load_backbone
from mtl_tutor.bert.load import embedded_minilm_dir

ATOL = 1e-5      # max |ours - hf| over real-token hidden states and the pooler output (float32)
GRAD_RTOL = 1e-5  # per parameter: ||g_ours - g_hf|| / max(||g_hf||, floor), see below

SENTENCES = [
    "the film is a charming, funny and moving portrait of a family.",
    "bad.",
    "How do I learn to play the guitar quickly without a teacher at all?",
    "an utterly forgettable sequel",
]
SECOND = ["it is.", "What is the best way to teach myself guitar?", "no", "a dull sequel"]


def hf_twin(bert: BertModel, attn_implementation: str) -> transformers.BertModel:
    """A transformers.BertModel built from minBERT's config, holding a copy of its weights."""
    hf = transformers.BertModel(transformers.BertConfig(**bert.config.to_dict()))
    hf.set_attn_implementation(attn_implementation)
    hf.load_state_dict(bert.state_dict())
    return hf.eval()


def scalar_loss(out, mask: torch.Tensor, seed: int = 0):
    """A fixed random projection of the real-token hidden states plus the pooler output."""
    hidden, pooled = out["last_hidden_state"], out["pooler_output"]
    g = torch.Generator().manual_seed(seed)
    ph = torch.randn(hidden.shape, generator=g)
    pp = torch.randn(pooled.shape, generator=g)
    return (hidden * mask[..., None] * ph).sum() + (pooled * pp).sum()


def assert_same_outputs_and_gradients(ours: BertModel, hf: torch.nn.Module, batch: dict) -> None:
    mask = batch["attention_mask"]
    real = mask.bool()
    out, ref = ours(**batch), hf(**batch)
    hidden_err = (out["last_hidden_state"] - ref.last_hidden_state)[real].abs().max().item()
    pooled_err = (out["pooler_output"] - ref.pooler_output).abs().max().item()
    assert hidden_err <= ATOL, f"last_hidden_state differs by {hidden_err:.2e}"
    assert pooled_err <= ATOL, f"pooler_output differs by {pooled_err:.2e}"

    names = [n for n, _ in ours.named_parameters()]
    ref_params = dict(hf.named_parameters())
    assert sorted(names) == sorted(ref_params), "parameter names differ from the HF layout"
    g_ours = torch.autograd.grad(scalar_loss(out, mask), list(ours.parameters()))
    g_ref = torch.autograd.grad(scalar_loss(ref, mask), [ref_params[n] for n in names])
    norms = torch.stack([g.norm() for g in g_ref])
    # The key biases have an exactly zero gradient (softmax ignores a shift shared by a whole row
    # of scores), so both sides hold rounding noise; such parameters compare on 1% of the mean norm.
    floor = 1e-2 * norms.mean().item()
    for name, a, b in zip(names, g_ours, g_ref, strict=True):
        rel = (a - b).norm().item() / max(b.norm().item(), floor)
        assert rel <= GRAD_RTOL, f"gradient of {name} differs: relative {rel:.2e}"


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


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("pairs,token_types", [(False, False), (True, True), (True, False)])
def test_minilm_matches_transformers(minilm, attn_implementation, pairs, token_types):
    bert, tokenizer = minilm
    hf = transformers.BertModel.from_pretrained(
        embedded_minilm_dir(), attn_implementation=attn_implementation
    ).eval()
    batch = sentence_batch(tokenizer, pairs, token_types)
    assert batch["attention_mask"].sum(1).unique().numel() > 1, "batch must mix lengths"
    assert_same_outputs_and_gradients(bert, hf, batch)


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("pairs,token_types", [(False, False), (True, True)])
def test_tiny_matches_transformers(tiny, attn_implementation, pairs, token_types):
    bert, tokenizer = tiny
    batch = sentence_batch(tokenizer, pairs, token_types)
    assert_same_outputs_and_gradients(bert, hf_twin(bert, attn_implementation), batch)
