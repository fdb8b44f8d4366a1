"""Shared toy profiles for the simulator tests."""

from __future__ import annotations

import pytest

from ssdsim import Chance, Coverage, ForwardLatency, LinkLatency, Profile


def toy_profile(**kw) -> Profile:
    """Context-free latencies (closed forms exact), distinct acceptance per proposer."""
    base = dict(
        name="toy",
        target=ForwardLatency(fixed_s=0.02, token_s=1e-4),
        draft=ForwardLatency(fixed_s=0.002, token_s=2e-5),
        link=LinkLatency(fixed_s=1e-4, per_byte_s=1e-9),
        chance=Chance(
            alpha=(0.8,),
            alpha_after_miss=(0.7,),
            alpha_fast=(0.4,),
            coverage=Coverage(beta_reject=(0.3, 0.35, 0.4), r=1.0, beta_bonus=0.25),
        ),
        fast_s=3e-4,
        fast_seq_s=2e-5,
        step_overhead_s=1e-4,
        seq_overhead_s=1e-5,
        max_context_tokens=10**7,
    )
    base.update(kw)
    return Profile(**base)


@pytest.fixture
def toy() -> Profile:
    return toy_profile()


@pytest.fixture
def make_toy():
    """The toy profile with fields overridden: ``make_toy(draft=...)``."""
    return toy_profile


@pytest.fixture
def gpu_like() -> Profile:
    """Roofline latencies with context terms (no closed form; exercises every latency term)."""
    return toy_profile(
        name="gpu-like",
        target=ForwardLatency(
            fixed_s=4e-3, weight_s=12e-3, kv_s=3e-8, compute_s=7e-5, attn_s=1e-10
        ),
        draft=ForwardLatency(fixed_s=8e-4, weight_s=9e-4, kv_s=1e-8, compute_s=5e-6, token_s=1e-6),
    )
