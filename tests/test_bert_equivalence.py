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

from mtl_tutor import BertModel, load_backbone
from mtl_tutor.bert.config import ATTENTION_PATHS
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


def with_attention(bert: BertModel, attention: str) -> BertModel:
    """The same weights in a minBERT that takes the given attention path."""
    twin = BertModel(bert.config)
    twin.load_state_dict(bert.state_dict())
    return twin.use_attention(attention).eval()


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
