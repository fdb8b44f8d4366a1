"""Closed forms: the simulator agrees within 1% where they are exact; optimal fan-out is optimal."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from ssdsim import Chance, Coverage, ForwardLatency, Policy, Workload, uniform_ssd
from ssdsim import analytic as an
from ssdsim.chance import chance_at
from ssdsim.simulator import simulate

LONG = Workload(batch_size=1, output_len_tokens=60000, prompt_len_tokens=16, num_prompts=1)


def test_sd_tokens_per_step_formula():
    for a, k in ((0.5, 1), (0.8, 4), (0.95, 7)):
        assert an.sd_tokens_per_step(a, k) == pytest.approx((1 - a ** (k + 1)) / (1 - a))
    assert an.sd_tokens_per_step((1.0,), 3) == 4.0


def test_ar_exact(toy):
    s = simulate(toy, Policy(mode="ar"), Workload(batch_size=4, output_len_tokens=50))
    assert s.tokens_per_s == pytest.approx(an.ar_tokens_per_s(toy, 4), rel=1e-9)


@pytest.mark.parametrize(
    "a, k, draft_s", [(0.5, 1, 2e-3), (0.8, 3, 1e-3), (0.9, 6, 4e-3), (0.95, 4, 0.5e-3)]
)
def test_sd_agrees(toy, a, k, draft_s):
    prof = dataclasses.replace(
        toy, chance=Chance(alpha=(a,)), draft=ForwardLatency(fixed_s=draft_s, token_s=1e-5)
    )
    wl = Workload(batch_size=16, output_len_tokens=8000, prompt_len_tokens=16)
    s = simulate(prof, Policy(mode="sd", k=k), wl)
    assert s.tokens_per_step == pytest.approx(an.sd_tokens_per_step(a, k), rel=0.01)
    assert s.tokens_per_s == pytest.approx(
        an.sd_tokens_per_step(a, k) / an.sd_step_s(prof, k, 16), rel=0.01
    )


SSD_CASES = {  # profile overrides, policy, temperature
    "uniform-jit": ({}, uniform_ssd(4, 3), 0.0),
    "geometric-jit": (
        {},
        Policy(mode="ssd", k=5, fan_out=(6, 4, 3, 2, 2, 1), fan_out_miss=(10, 4, 2, 1, 1, 0)),
        0.0,
    ),
    "fast": (
        {},
        Policy(
            mode="ssd", k=4, fan_out=(3, 2, 2, 1, 2), fan_out_miss=(5, 2, 1, 1, 1), fallback="fast"
        ),
        0.0,
    ),
    "draft-bound": ({"draft": ForwardLatency(fixed_s=6e-3, token_s=1e-5)}, uniform_ssd(3, 4), 0.0),
    "sampled-rescaled": ({}, uniform_ssd(3, 2, rescale=0.4), 0.9),
}


@pytest.mark.parametrize("name", sorted(SSD_CASES))
def test_ssd_b1_agrees(name, make_toy):
    overrides, pol, temp = SSD_CASES[name]
    prof = make_toy(**overrides)
    s = simulate(prof, pol, dataclasses.replace(LONG, temperature=temp))
    a = an.ssd_b1(prof, pol, temp)
    assert s.hit_rate == pytest.approx(a.hit_rate, abs=0.01)
    assert s.tokens_per_step == pytest.approx(a.tokens_per_step, rel=0.01)
    assert s.tokens_per_s == pytest.approx(a.tokens_per_s, rel=0.01)
    if name == "draft-bound":
        assert a.step_hit_s > an.lat.verify_s(prof, 1, pol.k, 0) + 2 * prof.link.fixed_s


def test_stationary_hit_rate_of_a_two_state_chain():
    at = chance_at(Chance(alpha=(0.8,), alpha_after_miss=(0.5,)), 0.0)
    pol = Policy(mode="ssd", k=3, fan_out=(2, 2, 1, 3), fan_out_miss=(5, 1, 1, 1))
    h, p_hh, p_mh = an.stationary_hit_rate(at, pol, "jit")
    assert p_hh == pytest.approx(an.hit_rate(at, 3, pol.fan_out))
    assert p_mh == pytest.approx(an.hit_rate(at, 3, pol.fan_out_miss, "jit"))
    assert h == pytest.approx(h * p_hh + (1 - h) * p_mh)  # stationary


def _brute_force(gains: np.ndarray, budget: int) -> float:
    best = -np.inf
    for combo in itertools.product(range(budget + 1), repeat=gains.shape[0] - 1):
        last = budget - sum(combo)
        if last >= 0:
            best = max(best, sum(gains[j, f] for j, f in enumerate((*combo, last))))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_allocate_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, budget = int(rng.integers(2, 5)), int(rng.integers(0, 8))
    steps = rng.random((n, budget + 1))
    steps[:, 0] = 0
    gains = np.cumsum(
        steps if seed % 2 else np.sort(steps, axis=1)[:, ::-1], axis=1
    )  # odd: non-concave
    alloc = an.allocate(gains, budget)
    assert sum(alloc) == budget and len(alloc) == n
    assert sum(gains[j, f] for j, f in enumerate(alloc)) == pytest.approx(
        _brute_force(gains, budget)
    )


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_optimal_fan_out_beats_uniform_and_proportional(temperature):
    chance = Chance(
        alpha=(0.75,),
        alpha_fast=(0.3,),
        coverage=Coverage(beta_reject=(0.4,), r=0.8, beta_bonus=0.3),
    )
    at = chance_at(chance, temperature)
    k, budget = 5, 18
    best = an.optimal_fan_out(at, k, budget)
    prop = an.proportional_fan_out(at, k, budget)
    assert sum(best) == sum(prop) == budget and len(best) == len(prop) == k + 1
    h_best = an.hit_rate(at, k, best)
    assert h_best >= an.hit_rate(at, k, (3,) * 6) and h_best >= an.hit_rate(at, k, prop) - 1e-12
    assert an.hit_rate(at, k, prop) == pytest.approx(
        h_best, abs=0.01
    )  # the continuous optimum rounds well
    assert list(prop[:k]) == sorted(prop[:k], reverse=True)  # decays along positions
    fast = an.optimal_fan_out(at, k, budget, "fast")
    assert an.hit_rate(at, k, fast, "fast") >= an.hit_rate(at, k, best, "fast")
