"""Branch attention equals plain attention over each branch's materialised context (trunk prefix + chain)."""

from __future__ import annotations

import pytest
import torch

from kernels.branch_attention import branch_attention, branch_attention_reference, branch_trunk_mask

SHAPES = [
    # (B, M, H, H_kv, D, L, c)
    (1, 1, 2, 2, 8, 5, 1),
    (2, 3, 4, 2, 16, 17, 2),
    (3, 5, 8, 1, 32, 40, 4),
    (4, 7, 6, 3, 64, 23, 3),
]


def _inputs(shape, dtype, seed):
    b, m, h, kvh, d, length, c = shape
    g = torch.Generator().manual_seed(seed)
    r = b * m
    q = torch.randn((r, h, d), generator=g).to(dtype)
    # The trunk buffer is longer than any branch reads, as in a real cache.
    trunk_k = torch.randn((b, kvh, length + 3, d), generator=g).to(dtype)
    trunk_v = torch.randn((b, kvh, length + 3, d), generator=g).to(dtype)
    chain_k = torch.randn((r, kvh, c, d), generator=g).to(dtype)
    chain_v = torch.randn((r, kvh, c, d), generator=g).to(dtype)
    trunk_len = torch.randint(0, length + 1, (r,), generator=g)
    trunk_len[0] = length  # at least one branch reads the whole trunk
    return q, trunk_k, trunk_v, trunk_len, chain_k, chain_v, length


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("dtype", "atol"), [(torch.float32, 1e-5), (torch.float64, 1e-12), (torch.bfloat16, 3e-2)]
)
def test_branch_attention_matches_reference(shape, dtype, atol):
    q, tk, tv, tl, ck, cv, length = _inputs(shape, dtype, seed=sum(shape))
    scale = shape[4] ** -0.5
    mask = branch_trunk_mask(tl, shape[0], length)
    got = branch_attention(q, tk[:, :, :length], tv[:, :, :length], mask, ck, cv, scale)
    want = branch_attention_reference(q, tk, tv, tl, ck, cv, scale)
    assert got.dtype == dtype and got.shape == q.shape
    torch.testing.assert_close(got.float(), want.float(), atol=atol, rtol=0)


def test_reference_is_plain_attention():
    """The reference itself: one branch with full trunk equals softmax(qK^T)V over cat(trunk, chain)."""
    q, tk, tv, tl, ck, cv, _length = _inputs((1, 1, 2, 1, 8, 6, 2), torch.float64, seed=3)
    tl[:] = 4
    want = branch_attention_reference(q, tk, tv, tl, ck, cv, 0.5)
    keys = torch.cat((tk[0, 0, :4], ck[0, 0]))
    values = torch.cat((tv[0, 0, :4], cv[0, 0]))
    plain = torch.softmax(q[0] @ keys.T * 0.5, dim=-1) @ values
    torch.testing.assert_close(want[0], plain)


def test_trunk_is_read_in_place():
    """Branches see later writes to the trunk buffer: the kernel reads the trunk, it does not copy it."""
    q, tk, tv, tl, ck, cv, length = _inputs((2, 2, 2, 1, 8, 6, 1), torch.float32, seed=4)
    tl[:] = length
    mask = branch_trunk_mask(tl, 2, length)
    before = branch_attention(q, tk[:, :, :length], tv[:, :, :length], mask, ck, cv, 1.0)
    tv[1, :, 0] += 5.0
    after = branch_attention(q, tk[:, :, :length], tv[:, :, :length], mask, ck, cv, 1.0)
    assert torch.equal(before[:2], after[:2]) and not torch.allclose(before[2:], after[2:])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_branch_attention_on_cuda_bf16():
    q, tk, tv, tl, ck, cv, length = _inputs((4, 6, 8, 2, 64, 300, 5), torch.bfloat16, seed=5)
    dev = [t.cuda() for t in (q, tk, tv, tl, ck, cv)]
    mask = branch_trunk_mask(dev[3], 4, length)
    got = branch_attention(
        dev[0], dev[1][:, :, :length], dev[2][:, :, :length], mask, dev[4], dev[5], 0.125
    )
    want = branch_attention_reference(q, tk, tv, tl, ck, cv, 0.125)
    torch.testing.assert_close(got.cpu().float(), want.float(), atol=3e-2, rtol=0)
