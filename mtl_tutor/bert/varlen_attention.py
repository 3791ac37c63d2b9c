"""Self-attention over packed sequences of different lengths.

The N real tokens of a batch lie end to end; sequence b owns rows
``cu_seqlens[b]:cu_seqlens[b+1]`` of the packed (N, 3, nh, hs) query/key/value tensor, and
attends only to itself:
    y_i = softmax(q_i K_b^T / sqrt(hs)) V_b        for every token i of sequence b.
Three kernels, one per device (``PackedSequences.attend`` picks):
- CUDA, ``flash_attn`` installed, half precision: FlashAttention-2's varlen kernel (Dao 2023,
  "FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning",
  https://arxiv.org/abs/2307.08691), which reads ``cu_seqlens`` and never pads.
- CUDA otherwise: ``scaled_dot_product_attention`` on jagged nested tensors.
- CPU: re-pad for attention only. Attention is a few percent of BERT's FLOPs at CS224N
  lengths; the projections and the feed-forward, which dominate, still run on N tokens. On
  2 CPU cores one batched, masked SDPA call per layer trained faster than one call per
  sequence or than nested tensors (bench/minbert_vs_hf.py has the end-to-end numbers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

try:
    from flash_attn import flash_attn_varlen_func
except ImportError:  # optional: CUDA machines with flash-attn installed
    flash_attn_varlen_func = None


def flash_attention_available(qkv: Tensor) -> bool:
    """Whether FlashAttention's varlen kernel can take ``qkv``: CUDA, fp16/bf16, package present."""
    return (flash_attn_varlen_func is not None and qkv.is_cuda
            and qkv.dtype in (torch.float16, torch.bfloat16))


def attention_flash(qkv: Tensor, cu_seqlens: Tensor, max_len: int, dropout_p: float) -> Tensor:
    """FlashAttention-2 varlen. qkv: (N, 3, nh, hs); cu_seqlens: (B+1,) int32 -> (N, nh, hs)."""
    q, k, v = qkv.unbind(1)  # (N, nh, hs) each
    return flash_attn_varlen_func(q, k, v, cu_seqlens, cu_seqlens, max_len, max_len,
                                  dropout_p=dropout_p)


def attention_nested(qkv: Tensor, cu_seqlens: Tensor, max_len: int, dropout_p: float) -> Tensor:
    """SDPA on jagged nested tensors. qkv: (N, 3, nh, hs) -> (N, nh, hs)."""
    offsets = cu_seqlens.long()

    def jagged(x: Tensor) -> Tensor:  # (N, nh, hs) -> (B, nh, j, hs), j ragged
        nested = torch.nested.nested_tensor_from_jagged(x, offsets, max_seqlen=max_len)
        return nested.transpose(1, 2)

    q, k, v = (jagged(x.contiguous()) for x in qkv.unbind(1))
    y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)  # (B, nh, j, hs)
    return y.transpose(1, 2).values()  # (N, nh, hs)


def attention_repadded(qkv: Tensor, padded_index: Tensor, key_mask: Tensor,
                       dropout_p: float) -> Tensor:
    """Scatter to a (B, L, ...) rectangle, L the longest sequence, attend with padding keys
    masked, gather the real rows back. qkv: (N, 3, nh, hs); padded_index: (N,) row of each
    token in the flattened (B*L) rectangle; key_mask: (B, 1, 1, L) -> (N, nh, hs)."""
    B, L = key_mask.shape[0], key_mask.shape[-1]
    rect = qkv.new_zeros(B * L, *qkv.shape[1:]).index_copy(0, padded_index, qkv)  # (B*L, 3, nh, hs)
    q, k, v = rect.view(B, L, *qkv.shape[1:]).transpose(1, 3).unbind(2)  # (B, nh, L, hs) each
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout_p)
    return y.transpose(1, 2).flatten(0, 1)[padded_index]  # (N, nh, hs)
