"""Switches that make minBERT train faster without changing what it computes (within rounding).

- ``bf16_autocast``: mixed precision (Micikevicius et al. 2018, "Mixed Precision Training",
  https://arxiv.org/abs/1710.03740) with bfloat16 instead of float16, so no loss scaling is
  needed: matrix products run in bfloat16, softmax, LayerNorm and the loss in float32, the
  weights and their gradients stay float32.
- ``compile_backbone``: ``torch.compile`` on every block except the attention kernel, in place,
  so parameter names do not change.
"""

from __future__ import annotations

import torch

from .model import BertModel


def bf16_autocast(device: str | torch.device, enabled: bool = True) -> torch.autocast:
    """``with bf16_autocast("cuda"):`` around the forward pass and the loss (not the backward)."""
    device_type = torch.device(device).type
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=enabled)


def compile_backbone(bert: BertModel) -> BertModel:
    """Compile the embeddings and, in every layer, the attention output projection and the
    feed-forward sub-layer (bias + GELU, dropout + residual + LayerNorm fuse into single
    kernels). The attention itself stays eager: the unpadded path's per-batch sequence lengths
    would otherwise force a recompilation for every batch. Token counts are compiled as dynamic
    sizes, so batches of any shape reuse the same code. Returns ``bert``, compiled in place."""
    bert.embeddings.compile(dynamic=True)
    for layer in bert.encoder.layer:
        layer.attention.output.compile(dynamic=True)
        layer.intermediate.compile(dynamic=True)
        layer.output.compile(dynamic=True)
    return bert
