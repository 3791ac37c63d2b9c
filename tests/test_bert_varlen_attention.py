"""The packed-sequence attention kernels agree with padded, masked attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mtl_tutor.bert.varlen_attention import attention_nested, attention_per_sequence

LENGTHS = [5, 1, 9, 3]


def packed_qkv(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    N, nh, hs = sum(LENGTHS), 3, 8
    return [torch.randn(N, nh, hs, generator=g, requires_grad=True) for _ in range(3)]


def padded_reference(q, k, v):
    """Pad to (B, nh, T, hs), mask padding keys, attend, keep the real rows."""
    B, T = len(LENGTHS), max(LENGTHS)
    real = torch.arange(T)[None, :] < torch.tensor(LENGTHS)[:, None]  # (B, T)
    index = real.flatten().nonzero().flatten()

    def pad(x):  # (N, nh, hs) -> (B, nh, T, hs)
        return x.new_zeros(B * T, *x.shape[1:]).index_copy(0, index, x).view(B, T, *x.shape[1:])

    y = F.scaled_dot_product_attention(*(pad(x).transpose(1, 2) for x in (q, k, v)),
                                       attn_mask=real[:, None, None, :])
    return y.transpose(1, 2).flatten(0, 1)[index]  # (N, nh, hs)


# On CPU, torch's jagged SDPA falls back to a per-sequence loop that warns about the prototype API.
@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
@pytest.mark.parametrize("kernel", ["per_sequence", "nested"])
def test_kernel_matches_padded_attention_and_its_gradient(kernel):
    q, k, v = packed_qkv()
    cu_seqlens = F.pad(torch.tensor(LENGTHS).cumsum(0), (1, 0)).to(torch.int32)
    if kernel == "per_sequence":
        y = attention_per_sequence(q, k, v, LENGTHS, dropout_p=0.0)
    else:
        y = attention_nested(q, k, v, cu_seqlens, max(LENGTHS), dropout_p=0.0)
    ref = padded_reference(q, k, v)
    torch.testing.assert_close(y, ref, atol=1e-6, rtol=1e-5)
    w = torch.randn_like(ref)
    grads = torch.autograd.grad((y * w).sum(), (q, k, v))
    ref_grads = torch.autograd.grad((ref * w).sum(), (q, k, v))
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
