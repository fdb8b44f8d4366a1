"""Cost model: forward roofline, link, message sizes, composite step costs (no SimPy)."""

from __future__ import annotations

import numpy as np
import pytest

from ssdsim import ForwardLatency, LinkLatency, Policy, uniform_ssd
from ssdsim import latency as lat

GPU = ForwardLatency(
    fixed_s=1e-3, weight_s=10e-3, kv_s=1e-7, compute_s=1e-4, token_s=1e-6, attn_s=1e-9
)
CPU = ForwardLatency(fixed_s=2e-3, token_s=5e-4, attn_s=1e-8)


def test_gpu_roofline_flat_then_linear():
    t = [
        lat.forward_s(ForwardLatency(weight_s=10e-3, compute_s=1e-4), 1, n, 0)
        for n in (1, 50, 100, 200, 400)
    ]
    assert t[:3] == [10e-3] * 3  # memory-bound: flat up to weight_s / compute_s = 100 tokens
    assert t[3] == pytest.approx(20e-3) and t[4] == pytest.approx(40e-3)


def test_forward_formula_every_term():
    b, n, c = 4, 8, 300
    expect = 1e-3 + max(10e-3 + 1e-7 * b * c, 1e-4 * b * n) + 1e-6 * b * n + 1e-9 * b * n * c
    assert lat.forward_s(GPU, b, n, c) == pytest.approx(expect)
    assert lat.forward_s(CPU, 2, 3, 100) == pytest.approx(2e-3 + 5e-4 * 6 + 1e-8 * 6 * 100)
    assert lat.forward_s(GPU, 0, 8, 100) == 0.0


def test_arrays_match_scalars():
    b = np.array([0, 1, 4, 32])
    c = np.array([10.0, 100.0, 500.0, 900.0])
    arr = lat.forward_s(GPU, b, 8, c)
    assert arr.tolist() == [
        lat.forward_s(GPU, int(x), 8, float(y)) for x, y in zip(b, c, strict=True)
    ]
    seq = lat.forwards_s(GPU, b, 3, c, 3, 4)
    assert np.allclose(
        seq,
        [
            sum(lat.forward_s(GPU, int(x), 3, float(y) + 3 * i) for i in range(4))
            for x, y in zip(b, c, strict=True)
        ],
    )


def test_link_and_message_sizes():
    link = LinkLatency(fixed_s=1e-4, per_byte_s=1e-9)
    assert lat.link_s(link, 1000) == pytest.approx(1e-4 + 1e-6)
    greedy = lat.response_bytes(2, 7, 128256, 2, with_dists=False)
    sampled = lat.response_bytes(2, 7, 128256, 2, with_dists=True)
    assert sampled - greedy == 2 * 7 * 128256 * 2  # k distributions of V entries per sequence
    assert (
        lat.request_bytes(4) - lat.request_bytes(1) == 3 * lat.REQUEST_INTS_PER_SEQ * lat.INT_BYTES
    )


def test_composite_costs(toy):
    c = 100
    assert lat.draft_chain_s(toy, 1, 3, c) == pytest.approx(
        sum(lat.forward_s(toy.draft, 1, 1, c + 1 + i) for i in range(3))
    )
    glue = lat.forward_s(toy.draft, 2, 5, c + 5)
    tree = sum(lat.forward_s(toy.draft, 2, 12, c + 5 + (d + 1) * 12) for d in range(4))
    assert lat.prespec_s(toy, 2, 4, 12, c) == pytest.approx(glue + tree)
    assert lat.verify_s(toy, 2, 4, c) == pytest.approx(
        lat.forward_s(toy.target, 2, 5, c + 5) + 1e-4 + 2e-5
    )
    assert lat.fast_speculator_s(toy, 0) == 0.0
    assert lat.fast_speculator_s(toy, 3) == pytest.approx(3e-4 + 6e-5)


def test_cache_bytes(toy):
    pol = uniform_ssd(4, 3)
    assert lat.cache_bytes(toy, pol, 2) == 2 * 15 * 4 * toy.vocab_size * toy.dist_bytes
    assert (
        lat.cache_bytes(toy, Policy(mode="ssd", k=1, fan_out=(1, 1)), 1)
        == 2 * 1 * toy.vocab_size * toy.dist_bytes
    )
