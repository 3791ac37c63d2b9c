"""Shared by the tests/test_bert_*.py files: compare two BERTs' outputs and gradients."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from mtl_tutor import BertModel


def with_attention(bert: BertModel, attention: str) -> BertModel:
    """The same weights in a new minBERT that takes the given attention path, in eval mode."""
    twin = BertModel(bert.config)
    twin.load_state_dict(bert.state_dict())
    return twin.use_attention(attention).eval()


def hidden_and_pooled(out) -> tuple[torch.Tensor, torch.Tensor]:
    """(last_hidden_state, pooler_output) from minBERT's dict or a transformers output."""
    if isinstance(out, dict):
        return out["last_hidden_state"], out["pooler_output"]
    return out.last_hidden_state, out.pooler_output


def scalar_loss(hidden: torch.Tensor, pooled: torch.Tensor, mask: torch.Tensor, seed: int = 0):
    """A fixed random projection of the real-token hidden states plus the pooler output."""
    g = torch.Generator().manual_seed(seed)
    ph = torch.randn(hidden.shape, generator=g)
    pp = torch.randn(pooled.shape, generator=g)
    return (hidden.float() * mask[..., None] * ph).sum() + (pooled.float() * pp).sum()


def compare(ours: nn.Module, ref: nn.Module, batch: dict,
            context=contextlib.nullcontext) -> tuple[float, float, dict]:
    """Max |ours - ref| over real-token hidden states, over pooler outputs, and per parameter
    the relative gradient error ||g_ours - g_ref|| / max(||g_ref||, floor) of ``scalar_loss``.
    ``ours`` runs its forward inside ``context()`` (e.g. an autocast).

    The key biases have an exactly zero gradient (softmax ignores a shift shared by a whole row
    of scores), so both sides hold rounding noise; the floor, 1% of the mean gradient norm, puts
    such parameters on the scale of the others.
    """
    mask = batch["attention_mask"]
    real = mask.bool()
    with context():
        hidden, pooled = hidden_and_pooled(ours(**batch))
    ref_hidden, ref_pooled = hidden_and_pooled(ref(**batch))
    hidden_err = (hidden.float() - ref_hidden.float())[real].abs().max().item()
    pooled_err = (pooled.float() - ref_pooled.float()).abs().max().item()

    names = [n for n, _ in ours.named_parameters()]
    ref_params = dict(ref.named_parameters())
    assert sorted(names) == sorted(ref_params), "parameter names differ from the HF layout"
    g_ours = torch.autograd.grad(scalar_loss(hidden, pooled, mask), list(ours.parameters()))
    g_ref = torch.autograd.grad(scalar_loss(ref_hidden, ref_pooled, mask),
                                [ref_params[n] for n in names])
    floor = 1e-2 * torch.stack([g.norm() for g in g_ref]).mean().item()
    grad_err = {name: (a - b).norm().item() / max(b.norm().item(), floor)
                for name, a, b in zip(names, g_ours, g_ref, strict=True)}
    return hidden_err, pooled_err, grad_err


def assert_close_bert(ours: nn.Module, ref: nn.Module, batch: dict, atol: float,
                      grad_rtol: float) -> None:
    """``compare`` within ``atol`` on outputs and ``grad_rtol`` on every parameter's gradient."""
    hidden_err, pooled_err, grad_err = compare(ours, ref, batch)
    assert hidden_err <= atol, f"last_hidden_state differs by {hidden_err:.2e}"
    assert pooled_err <= atol, f"pooler_output differs by {pooled_err:.2e}"
    worst = max(grad_err, key=grad_err.get)
    assert grad_err[worst] <= grad_rtol, (
        f"gradient of {worst} differs: relative {grad_err[worst]:.2e}")
