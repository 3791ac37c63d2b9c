"""The packed-sequence attention kernels agree with attention run on each sequence alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mtl_tutor.bert.sequences import PackedSequences
from mtl_tutor.bert.varlen_attention import attention_nested, attention_repadded

LENGTHS = [5, 1, 9, 3]


def packed_qkv(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    N, nh, hs = sum(LENGTHS), 3, 8
    return torch.randn(N, 3, nh, hs, generator=g, requires_grad=True)


def one_sequence_at_a_time(qkv: torch.Tensor) -> torch.Tensor:
    """The definition: each sequence attends to itself, no padding anywhere."""
    ys = []
    for chunk in qkv.split(LENGTHS):  # (L_b, 3, nh, hs)
        q, k, v = chunk.permute(1, 2, 0, 3)  # (nh, L_b, hs) each
        ys.append(F.scaled_dot_product_attention(q, k, v).transpose(0, 1))  # (L_b, nh, hs)
    return torch.cat(ys)


# On CPU, torch's jagged SDPA falls back to a per-sequence loop that warns about the prototype API.
@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
@pytest.mark.parametrize("kernel", ["repadded", "nested"])
@pytest.mark.parametrize("padding", [0, 4])
def test_kernel_matches_the_definition_and_its_gradient(kernel, padding):
    qkv = packed_qkv()
    mask = torch.arange(max(LENGTHS) + padding)[None, :] < torch.tensor(LENGTHS)[:, None]
    seqs = PackedSequences.from_mask(mask.long())
    if kernel == "repadded":
        y = attention_repadded(qkv, seqs.padded_index, seqs.key_mask, dropout_p=0.0)
    else:
        y = attention_nested(qkv, seqs.cu_seqlens, seqs.max_len, dropout_p=0.0)
    ref = one_sequence_at_a_time(qkv)
    torch.testing.assert_close(y, ref, atol=1e-6, rtol=1e-5)
    w = torch.randn_like(ref)
    (grad,) = torch.autograd.grad((y * w).sum(), qkv)
    (ref_grad,) = torch.autograd.grad((ref * w).sum(), qkv)
    torch.testing.assert_close(grad, ref_grad, atol=1e-6, rtol=1e-5)


def test_packing_round_trip():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    seqs = PackedSequences.from_mask(mask)
    assert seqs.cu_seqlens.tolist() == [0, 3, 4, 8] and seqs.max_len == 4
    assert seqs.positions().tolist() == [0, 1, 2, 0, 0, 1, 2, 3]
    assert seqs.first_tokens().tolist() == [0, 3, 4]
    x = torch.randn(3, 4, 2)
    restored = seqs.unpack(seqs.pack(x))
    torch.testing.assert_close(restored, x * mask[..., None])
