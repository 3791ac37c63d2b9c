"""How a batch of sequences of different lengths reaches attention: padded, or packed.

A tokenizer pads a batch to a (B, T) rectangle and marks real tokens in ``attention_mask``.
``PaddedSequences`` keeps the rectangle: every layer computes on B*T tokens and attention masks
out padding keys. ``PackedSequences`` keeps only the N real tokens (N <= B*T): embeddings,
projections, feed-forward and LayerNorms run on (N, C), attention runs within each sequence
(varlen_attention.py), and ``unpack`` restores the (B, T, C) rectangle with zeros at padding.
Packing is the "unpadding" of Zeng et al. 2022, "Boosting Distributed Training Performance of
the Unpadded BERT Model" (https://arxiv.org/abs/2208.08124).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .varlen_attention import (
    attention_flash,
    attention_nested,
    attention_repadded,
    flash_attention_available,
)


@dataclass
class PaddedSequences:
    """The rectangle as it came: ``key_mask`` (B, 1, 1, T) is True at real keys, or None."""

    key_mask: Tensor | None

    def attend(self, qkv: Tensor, dropout_p: float) -> Tensor:
        """softmax(Q K^T / sqrt(hs) + mask) V. qkv: (B, T, 3, nh, hs) -> (B, T, nh, hs)."""
        q, k, v = qkv.transpose(1, 3).unbind(2)  # (B, nh, T, hs) each
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.key_mask, dropout_p=dropout_p)
        return y.transpose(1, 2)  # (B, T, nh, hs)


@dataclass
class PackedSequences:
    """The N real tokens of a (B, T) batch, end to end, row by row."""

    index: Tensor       # (N,) position of each real token in the flattened (B*T) batch
    cu_seqlens: Tensor  # (B+1,) int32: sequence b is rows cu_seqlens[b]:cu_seqlens[b+1]
    max_len: int        # L: the longest sequence
    shape: tuple[int, int]  # (B, T)
    padded_index: Tensor  # (N,) row of each token in a (B*L) rectangle (CPU attention)
    key_mask: Tensor    # (B, 1, 1, L): True at the real keys of that rectangle

    @classmethod
    def from_mask(cls, attention_mask: Tensor) -> PackedSequences:
        """Pack by ``attention_mask`` (B, T). Every row must start with a real token ([CLS]):
        the pooler reads position 0, and an empty row has nothing to attend to."""
        B, T = attention_mask.shape
        real = attention_mask.bool()
        lengths = real.sum(1)  # (B,)
        cu_seqlens = F.pad(lengths.cumsum(0), (1, 0))  # (B+1,)
        starts_padded = (~real[:, 0]).nonzero().flatten().tolist()
        if starts_padded:
            raise ValueError(
                f"attention='unpadded' needs a real token at position 0 of every row "
                f"(right padding, as the tokenizer produces); rows {starts_padded[:5]} start "
                "with padding. Use attention='padded' for such batches."
            )
        index = real.flatten().nonzero().flatten()  # (N,)
        L = int(lengths.max())
        row = torch.repeat_interleave(torch.arange(B, device=index.device), lengths)  # (N,)
        within = torch.arange(index.numel(), device=index.device) - cu_seqlens[row]  # (N,)
        return cls(
            index=index,
            cu_seqlens=cu_seqlens.to(torch.int32),
            max_len=L,
            shape=(B, T),
            padded_index=row * L + within,
            key_mask=(torch.arange(L, device=index.device) < lengths[:, None])[:, None, None, :],
        )

    def pack(self, x: Tensor) -> Tensor:
        """(B, T, ...) -> (N, ...): keep the real tokens."""
        return x.flatten(0, 1)[self.index]

    def positions(self) -> Tensor:
        """(N,) column of each real token in the rectangle: its position id, as in padded BERT."""
        return self.index % self.shape[1]

    def first_tokens(self) -> Tensor:
        """(B,) row of each sequence's first token ([CLS]) in the packed (N, ...) tensor."""
        return self.cu_seqlens[:-1].long()

    def unpack(self, h: Tensor) -> Tensor:
        """(N, C) -> (B, T, C), zeros at padding positions."""
        B, T = self.shape
        return h.new_zeros(B * T, h.shape[-1]).index_copy(0, self.index, h).view(B, T, -1)

    def attend(self, qkv: Tensor, dropout_p: float) -> Tensor:
        """Attention within each sequence. qkv: (N, 3, nh, hs) -> (N, nh, hs)."""
        if flash_attention_available(qkv):
            return attention_flash(qkv, self.cu_seqlens, self.max_len, dropout_p)
        if qkv.is_cuda:
            return attention_nested(qkv, self.cu_seqlens, self.max_len, dropout_p)
        return attention_repadded(qkv, self.padded_index, self.key_mask, dropout_p)
