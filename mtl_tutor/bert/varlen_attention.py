"""Self-attention over packed sequences of different lengths, with no padding anywhere.

The N real tokens of a batch lie end to end in one (N, nh, hs) tensor; sequence b owns rows
``cu_seqlens[b]:cu_seqlens[b+1]``. Each sequence attends only to itself:
    y_i = softmax(q_i K_b^T / sqrt(hs)) V_b        for every token i of sequence b.
Three kernels, one per device:
- CUDA with the ``flash_attn`` package and half precision: FlashAttention-2's varlen kernel
  (Dao 2023, "FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning",
  https://arxiv.org/abs/2307.08691), which reads ``cu_seqlens`` directly.
- CUDA otherwise: ``scaled_dot_product_attention`` on a jagged nested tensor.
- CPU: one ``scaled_dot_product_attention`` call per sequence. On 2 CPU cores this measured
  faster than the nested tensor (about 3x) and than re-padding for attention (bench/).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

try:
    from flash_attn import flash_attn_varlen_func
except ImportError:  # optional: CUDA machines with flash-attn installed
    flash_attn_varlen_func = None


def attention_per_sequence(q: Tensor, k: Tensor, v: Tensor, lengths: list[int],
                           dropout_p: float) -> Tensor:
    """One SDPA call per sequence. q, k, v: (N, nh, hs) -> (N, nh, hs)."""
    qs, ks, vs = (x.transpose(0, 1).split(lengths, dim=1) for x in (q, k, v))  # (nh, L_b, hs)
    ys = [F.scaled_dot_product_attention(qb, kb, vb, dropout_p=dropout_p)
          for qb, kb, vb in zip(qs, ks, vs, strict=True)]
    return torch.cat(ys, dim=1).transpose(0, 1)  # (N, nh, hs)


def attention_nested(q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, max_len: int,
                     dropout_p: float) -> Tensor:
    """SDPA on jagged nested tensors. q, k, v: (N, nh, hs) -> (N, nh, hs)."""
    offsets = cu_seqlens.long()

    def jagged(x: Tensor) -> Tensor:  # (N, nh, hs) -> (B, nh, j, hs), j ragged
        nested = torch.nested.nested_tensor_from_jagged(x, offsets, max_seqlen=max_len)
        return nested.transpose(1, 2)

    y = F.scaled_dot_product_attention(jagged(q), jagged(k), jagged(v), dropout_p=dropout_p)
    return y.transpose(1, 2).values()  # (N, nh, hs)


def varlen_attention(q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, lengths: list[int],
                     dropout_p: float) -> Tensor:
    """Attention within each packed sequence. q, k, v: (N, nh, hs) -> (N, nh, hs).

    cu_seqlens: (B+1,) int32 start offsets on q's device; lengths: the B lengths as Python ints.
    """
    max_len = max(lengths)
    if q.is_cuda and flash_attn_varlen_func is not None and q.dtype in (torch.float16,
                                                                       torch.bfloat16):
        return flash_attn_varlen_func(q, k, v, cu_seqlens, cu_seqlens, max_len, max_len,
                                      dropout_p=dropout_p)
    if q.is_cuda:
        return attention_nested(q, k, v, cu_seqlens, max_len, dropout_p)
    return attention_per_sequence(q, k, v, lengths, dropout_p)
