"""Closed forms for AR, SD and SSD at B=1, and the optimal fan-out under a cache budget.

Used as oracles for the simulator (tests check agreement within 1% where the form is exact)
and by the optimizer (``optimal_fan_out``, ``hit_rate``, ``stationary_hit_rate``). Pure numpy
on the contract objects; never SimPy, torch or the executor.

Exactness: the step times below are exact for the simulator's model when latencies do not
depend on context (``kv_s = attn_s = 0``); otherwise pass the mean context as an approximation.
SSD at B=1 is a two-state Markov chain (this request hit or missed): from state s the
proposals follow that state's acceptance and the next tree uses that state's fan-out list, so
P(hit next | s) = sum_j P_s(A = j) c_j(F^s_j). In steady state the draft answers one request
every max(link + verify (+ fast on a fast-served miss), prespec) seconds, plus the jit decode
on a jit miss; throughput = E[tokens per step] / E[seconds per step] over the stationary chain.
(This is the issue's "max(t_verify, t_prespec) + link" with the link inside the max, because
the draft pre-speculates while both messages travel.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ssdsim import latency as lat
from ssdsim.chance import ChanceAt, accept_pmf, chance_at, coverage_for, hit_prob, mean_accepted_len
from ssdsim.policy import Policy
from ssdsim.profile import Profile

__all__ = [
    "SSDB1",
    "accept_pmf",
    "allocate",
    "ar_tokens_per_s",
    "fan_out_gains",
    "hit_rate",
    "optimal_fan_out",
    "proportional_fan_out",
    "sd_step_s",
    "sd_tokens_per_s",
    "sd_tokens_per_step",
    "ssd_b1",
    "stationary_hit_rate",
]


def sd_tokens_per_step(alpha: float | Sequence[float], k: int) -> float:
    """E[A + 1]; for an i.i.d. rate a this is (1 - a^(k+1)) / (1 - a)."""
    rates = (alpha,) if isinstance(alpha, (int, float)) else tuple(alpha)
    return 1.0 + mean_accepted_len(rates, k)


def ar_tokens_per_s(profile: Profile, batch: int = 1, context: float = 0.0) -> float:
    """Tokens per second per sequence of AR decoding."""
    return 1.0 / lat.ar_step_s(profile, batch, context)


def sd_step_s(profile: Profile, k: int, batch: int = 1, context: float = 0.0) -> float:
    """k draft forwards plus one verification of k+1 tokens (one device)."""
    return lat.sd_draft_s(profile, batch, k, context) + lat.verify_s(profile, batch, k, context)


def sd_tokens_per_s(
    profile: Profile, k: int, temperature: float = 0.0, batch: int = 1, context: float = 0.0
) -> float:
    """Tokens per second per sequence of SD with lookahead k."""
    at = chance_at(profile.chance, temperature)
    return sd_tokens_per_step(at.alpha, k) / sd_step_s(profile, k, batch, context)


def hit_rate(at: ChanceAt, k: int, fan_out: Sequence[int], proposer: str = "hit") -> float:
    """P(the next request hits) = sum_j P(A = j) c_j(F_j) when this step's proposals came from ``proposer``."""
    return hit_prob(at, proposer, k, fan_out)


@dataclass(frozen=True)
class SSDB1:
    """Steady-state SSD at batch size 1 (see the module docstring)."""

    hit_rate: float
    p_hit_after_hit: float
    p_hit_after_miss: float
    tokens_per_step: float
    step_s: float
    step_hit_s: float
    step_miss_s: float
    tokens_per_s: float


def stationary_hit_rate(at: ChanceAt, policy: Policy, miss_kind: str) -> tuple[float, float, float]:
    """(stationary hit rate, P(hit | last hit), P(hit | last miss)) of the two-state chain."""
    p_hh = hit_prob(at, "hit", policy.k, policy.fan_out)
    p_mh = hit_prob(at, miss_kind, policy.k, policy.fan_out_miss)
    denom = 1.0 - p_hh + p_mh
    return (p_mh / denom if denom > 0 else 1.0), p_hh, p_mh


def ssd_b1(
    profile: Profile, policy: Policy, temperature: float = 0.0, context: float = 0.0
) -> SSDB1:
    """Hit rate, step times and tokens per second of SSD at B=1."""
    if policy.mode != "ssd":
        raise ValueError(f"ssd_b1: policy.mode got {policy.mode!r}, expected 'ssd'")
    at = chance_at(profile.chance, temperature, policy.rescale)
    k, miss_kind = policy.k, policy.fallback_for(1)
    h, p_hh, p_mh = stationary_hit_rate(at, policy, miss_kind)
    draft_t = policy.draft_temperature if policy.draft_temperature is not None else temperature
    with_dists = temperature > 0 or draft_t > 0
    link = lat.link_s(profile.link, lat.request_bytes(1)) + lat.link_s(
        profile.link, lat.response_bytes(1, k, profile.vocab_size, profile.dist_bytes, with_dists)
    )
    verify = lat.verify_s(profile, 1, k, context, "ssd", with_dists)
    dists = profile.ssd_dist_row_s * k if with_dists else 0.0  # the draft's k distributions
    prespec = lat.prespec_s(profile, 1, k, policy.budget, context)
    step_hit = max(link + verify + dists, prespec)
    if miss_kind == "jit":
        step_miss = step_hit + lat.draft_chain_s(profile, 1, k, context)
    else:
        step_miss = max(link + verify + lat.fast_speculator_s(profile, 1), prespec)
    tokens = h * sd_tokens_per_step(at.alpha, k) + (1 - h) * sd_tokens_per_step(
        at.alpha_for(miss_kind), k
    )
    step = h * step_hit + (1 - h) * step_miss
    return SSDB1(h, p_hh, p_mh, tokens, step, step_hit, step_miss, tokens / step)


# -- fan-out under a budget --------------------------------------------------------------------
def fan_out_gains(at: ChanceAt, k: int, budget: int, proposer: str = "hit") -> np.ndarray:
    """g[j, F] = P(A = j) c_j(F) for j = 0..k, F = 0..budget: each position's share of the hit rate."""
    pmf = accept_pmf(at.alpha_for(proposer), k)
    fans = np.arange(budget + 1)
    return np.stack([pmf[j] * coverage_for(at, proposer, j, k, fans) for j in range(k + 1)])


def allocate(gains: np.ndarray, budget: int) -> tuple[int, ...]:
    """Integers F_j >= 0 with sum exactly ``budget`` maximising sum_j gains[j, F_j] (exact DP).

    Any gains (concave or not); ties go to the smaller fan-out at earlier positions.
    """
    n, width = gains.shape
    if budget < 0 or width < budget + 1:
        raise ValueError(f"allocate: budget got {budget}, expected 0..{width - 1}")
    m = np.arange(budget + 1)
    f = np.arange(budget + 1)
    best = np.where(m == 0, 0.0, -np.inf)  # best[m]: value of positions so far using exactly m
    choices = []
    for j in range(n):
        cand = np.where(
            f[None, :] <= m[:, None],
            best[np.maximum(m[:, None] - f[None, :], 0)] + gains[j, f][None, :],
            -np.inf,
        )
        choice = cand.argmax(axis=1)
        best = cand[m, choice]
        choices.append(choice)
    out, left = [], budget
    for choice in reversed(choices):
        out.append(int(choice[left]))
        left -= out[-1]
    return tuple(reversed(out))


def optimal_fan_out(at: ChanceAt, k: int, budget: int, proposer: str = "hit") -> tuple[int, ...]:
    """The fan-out list (k+1 integers summing to ``budget``) maximising ``hit_rate`` exactly."""
    return allocate(fan_out_gains(at, k, budget, proposer), budget)


def proportional_fan_out(
    at: ChanceAt, k: int, budget: int, proposer: str = "hit"
) -> tuple[int, ...]:
    """The continuous optimum F_j ~ (P(A = j) beta_j)^(1/(1+r)) rounded by largest remainder.

    Power-law coverage with one exponent r (``coverage.r``) assumed; tables and the fast
    proposer's shifted coverage are ignored here (``optimal_fan_out`` handles them exactly).
    """
    cov = at.coverage
    pmf = accept_pmf(at.alpha_for(proposer), k)
    betas = [cov.beta_reject[min(j, len(cov.beta_reject) - 1)] for j in range(k)] + [cov.beta_bonus]
    weight = (pmf * np.array(betas)) ** (1.0 / (1.0 + cov.r))
    if weight.sum() <= 0:
        weight = np.ones(k + 1)
    ideal = budget * weight / weight.sum()
    out = np.floor(ideal).astype(int)
    for j in np.argsort(-(ideal - out), kind="stable")[: budget - int(out.sum())]:
        out[j] += 1
    return tuple(int(x) for x in out)
