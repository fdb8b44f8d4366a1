"""The analytic side of the optimizer: optimal fan-out lists and their hit rates (from ssdsim.analytic).

Used to seed every study with the analytic optimum and to draw the best fan-out beside it.
Never imports torch, executor or kernels.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from ssdsim.analytic import hit_rate, optimal_fan_out, stationary_hit_rate
from ssdsim.chance import chance_at
from ssdsim.optimize.space import Allocator
from ssdsim.policy import Policy
from ssdsim.profile import Profile


def allocator(profile: Profile, temperature: float) -> Allocator:
    """(k, budget, proposer, rescale) -> the hit-rate-optimal fan-out list (memoised per call site)."""

    @functools.lru_cache(maxsize=4096)
    def optimal(k: int, budget: int, proposer: str, rescale: float) -> tuple[int, ...]:
        return optimal_fan_out(chance_at(profile.chance, temperature, rescale), k, budget, proposer)

    return optimal


def optimal_lists(
    profile: Profile, temperature: float, rescale: float, k: int, budget: int, fallback: str
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Hit-rate-optimal fan-out after a hit and after a miss (served by ``fallback``) at budget M."""
    at = chance_at(profile.chance, temperature, rescale)
    return optimal_fan_out(at, k, budget, "hit"), optimal_fan_out(at, k, budget, fallback)


def list_hit_rate(
    profile: Profile,
    temperature: float,
    rescale: float,
    k: int,
    fan_out: Sequence[int],
    proposer: str = "hit",
) -> float:
    """P(next request hits) with ``fan_out`` when this step's proposals came from ``proposer``."""
    return hit_rate(chance_at(profile.chance, temperature, rescale), k, fan_out, proposer)


def policy_hit_rate(profile: Profile, policy: Policy, temperature: float, batch_size: int) -> float:
    """Stationary hit rate of an SSD policy (per sequence; the chain of hits and misses)."""
    at = chance_at(profile.chance, temperature, policy.rescale)
    return stationary_hit_rate(at, policy, policy.fallback_for(batch_size))[0]
