"""Metamorphic tests with common random numbers: changing X must move Y the right way."""

from __future__ import annotations

import dataclasses

import pytest

from ssdsim import Chance, Coverage, ForwardLatency, Policy, Workload, read_trace, uniform_ssd
from ssdsim.simulator import simulate

SEEDS = (0, 1, 2)
WL = Workload(batch_size=4, output_len_tokens=(100, 300), num_prompts=8)


def _with_alpha(prof, hit: float, jit: float, fast: float):
    cov = Coverage(beta_reject=(0.3,), r=1.0, beta_bonus=0.3)  # same coverage at every position
    return dataclasses.replace(
        prof, chance=Chance(alpha=(hit,), alpha_after_miss=(jit,), alpha_fast=(fast,), coverage=cov)
    )


@pytest.mark.parametrize(
    "policy",
    [
        Policy(mode="ar"),
        Policy(mode="sd", k=4),
        uniform_ssd(4, 3, "jit"),
        uniform_ssd(4, 3, "fast"),
    ],
    ids=["ar", "sd", "ssd-jit", "ssd-fast"],
)
def test_higher_acceptance_never_lowers_throughput(toy, policy):
    for seed in SEEDS:
        rates = [
            simulate(_with_alpha(toy, a, a - 0.1, a - 0.4), policy, WL, seed=seed).tokens_per_s
            for a in (0.6, 0.7, 0.8, 0.9)
        ]
        assert rates == sorted(rates)
        if policy.mode != "ar":
            assert rates[-1] > rates[0]


def test_cheaper_draft_never_lowers_sd_throughput(toy):
    pol = Policy(mode="sd", k=5)
    for seed in SEEDS:
        rates = []
        for fixed in (4e-3, 2e-3, 1e-3, 0.0):
            prof = dataclasses.replace(toy, draft=ForwardLatency(fixed_s=fixed, token_s=2e-5))
            rates.append(simulate(prof, pol, WL, seed=seed).tokens_per_s)
        assert rates == sorted(rates) and rates[-1] > rates[0]


def test_hit_rate_one_costs_one_verification_plus_link(toy, tmp_path):
    """With every outcome covered and pre-speculation shorter than verification, a hit step is verify + link."""
    prof = dataclasses.replace(
        toy,
        chance=dataclasses.replace(
            toy.chance, coverage=Coverage(beta_reject=(0.0,), beta_bonus=0.0)
        ),
    )
    pol = Policy(mode="ssd", k=4, fan_out=(2, 1, 1, 1, 1), fan_out_miss=(1, 2, 1, 1, 1))
    path = tmp_path / "t.jsonl"
    wl = Workload(batch_size=2, output_len_tokens=200, num_prompts=4)
    summary = simulate(prof, pol, wl, trace_path=path)
    steps = read_trace(path).steps
    hit_steps = [s for s in steps if all(o.cache_hit for o in s.seqs)]
    assert len(hit_steps) == len(steps) - 2  # only the first step of each batch misses
    for s in hit_steps:
        assert s.prespec_end_s - s.prespec_start_s < s.verify_s  # drafting fits inside verification
        assert s.wait_s == 0.0 and s.draft_s == 0.0
        assert s.t_end_s - s.t_start_s == pytest.approx(s.verify_s + s.link_s, rel=1e-12, abs=1e-15)
    assert summary.hit_rate == pytest.approx(1 - 4 / sum(len(s.seqs) for s in steps))


def _best_fallback_threshold(prof, batch_sizes) -> int:
    """Smallest batch size from which the fast fallback beats jit (CRN: same seeds for both)."""
    for b in batch_sizes:
        wl = Workload(batch_size=b, output_len_tokens=150, num_prompts=b)
        rate = {
            fb: sum(simulate(prof, uniform_ssd(4, 3, fb), wl, seed=s).tokens_per_s for s in SEEDS)
            for fb in ("jit", "fast")
        }
        if rate["fast"] > rate["jit"]:
            return b
    return batch_sizes[-1] * 2


def test_more_expensive_misses_move_the_best_fallback_toward_fast(toy):
    batch_sizes = (1, 2, 4, 8, 16, 32)
    thresholds = []
    for draft_fixed in (0.5e-3, 2e-3, 4e-3):
        prof = dataclasses.replace(toy, draft=ForwardLatency(fixed_s=draft_fixed, token_s=2e-6))
        thresholds.append(_best_fallback_threshold(prof, batch_sizes))
    assert thresholds == sorted(thresholds, reverse=True)
    assert thresholds[0] > thresholds[-1]
