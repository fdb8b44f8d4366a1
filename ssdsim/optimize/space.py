"""The search space of the optimizer: one function maps an Optuna trial to a Policy.

Parameters (conditional where they apply):

- ``k``: lookahead, 1..k_max.
- ``budget``: cache budget M = sum of each fan-out list, 1..m_max (the same for both lists).
- ``hit_family`` / ``miss_family``: how the fan-out after a hit / after a miss is built:
  ``optimal`` (the analytic hit-rate-optimal allocation of M at this k, rescale and fallback,
  from ``ssdsim.analytic``; no further parameters), ``geometric`` (``*_ratio``: each position gets ``ratio`` times the previous one; ``*_bonus``:
  the share of M given to the bonus slot j = k), or ``free`` (``*_w0`` .. ``*_w{k}``: a weight in
  [0, 1] per position). The miss list may also be ``same`` as the hit list.
  Either way M is split by the weights with largest-remainder rounding, so every list sums to M by
  construction, and every integer list with sum M is reachable through ``free``.
- ``rescale``: Saguaro's C in (0, 1], only when the temperature is above 0.
- ``fallback``: jit | fast, and ``auto`` with ``auto_threshold`` in 2..B when B >= 2 (at B = 1
  auto is the same as jit or fast).

Imports optuna (for the trial type only), numpy-free; never torch, executor or kernels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from ssdsim._schema import SchemaError
from ssdsim.policy import FALLBACKS, Policy
from ssdsim.profile import Profile

FAMILIES = ("optimal", "geometric", "free")
MISS_FAMILIES = (*FAMILIES, "same")
RATIO_RANGE = (0.05, 1.0)
RESCALE_RANGE = (0.05, 1.0)
# (k, budget, proposer, rescale) -> the hit-rate-optimal fan-out list (see theory.py).
Allocator = Callable[[int, int, str, float], tuple[int, ...]]
# Quotas within this of an integer count as that integer (weights rebuilt from an integer list
# must give that list back exactly).
_QUOTA_EPS = 1e-9


@dataclass(frozen=True)
class SearchSpace:
    """Bounds of the search for one (batch size, temperature).

    Fields:
        batch_size, temperature: of the workload (they decide which parameters exist).
        k_max: largest lookahead tried. m_max: largest cache budget M.
        families, miss_families: fan-out constructions offered for each list.
        fallbacks: offered miss fallbacks (``auto`` is dropped at batch size 1).
    """

    batch_size: int = 1
    temperature: float = 0.0
    k_max: int = 16
    m_max: int = 256
    families: tuple[str, ...] = FAMILIES
    miss_families: tuple[str, ...] = MISS_FAMILIES
    fallbacks: tuple[str, ...] = FALLBACKS

    def __post_init__(self) -> None:
        checks = (
            ("batch_size", self.batch_size >= 1, "an integer >= 1"),
            ("temperature", self.temperature >= 0, "a number >= 0"),
            ("k_max", 1 <= self.k_max <= 64, "an integer in 1..64"),
            ("m_max", self.m_max >= 1, "an integer >= 1"),
            (
                "families",
                bool(self.families) and set(self.families) <= set(FAMILIES),
                f"a non-empty subset of {FAMILIES}",
            ),
            (
                "miss_families",
                bool(self.miss_families) and set(self.miss_families) <= set(MISS_FAMILIES),
                f"a non-empty subset of {MISS_FAMILIES}",
            ),
            (
                "fallbacks",
                bool(self.fallbacks) and set(self.fallbacks) <= set(FALLBACKS),
                f"a non-empty subset of {FALLBACKS}",
            ),
        )
        for name, ok, expected in checks:
            if not ok:
                raise SchemaError(
                    f"SearchSpace.{name}: got {getattr(self, name)!r}, expected {expected}"
                )
        if self.batch_size < 2 and set(self.fallbacks) == {"auto"}:
            raise SchemaError(
                "SearchSpace.fallbacks: got ('auto',), expected jit or fast too (auto needs batch size >= 2)"
            )

    @property
    def offered_fallbacks(self) -> tuple[str, ...]:
        """Fallbacks the sampler chooses from (auto only where a threshold can matter)."""
        return tuple(f for f in self.fallbacks if f != "auto" or self.batch_size >= 2)

    def with_workload(self, batch_size: int, temperature: float) -> SearchSpace:
        return dataclasses.replace(self, batch_size=batch_size, temperature=temperature)


# -- fan-out construction -----------------------------------------------------------------------
def allocate(budget: int, weights: Sequence[float]) -> tuple[int, ...]:
    """Split ``budget`` into integers proportional to ``weights`` (largest remainder, ties to the front).

    All-zero weights give everything to position 0. The result always sums to ``budget``.
    """
    w = [max(0.0, float(x)) for x in weights]
    total = sum(w)
    if total <= 0:
        return (budget,) + (0,) * (len(w) - 1)
    quotas = [budget * x / total for x in w]
    base = [math.floor(q + _QUOTA_EPS) for q in quotas]
    rest = budget - sum(base)
    order = sorted(range(len(w)), key=lambda i: (-(quotas[i] - base[i]), i))
    for i in order[:rest]:
        base[i] += 1
    return tuple(base)


def geometric_weights(k: int, ratio: float, bonus_share: float) -> list[float]:
    """Weights for positions 0..k: ratio^j on the k rejection slots (sharing 1 - bonus_share), bonus_share at k."""
    head = [ratio**j for j in range(k)]
    norm = sum(head)
    return [(1.0 - bonus_share) * h / norm for h in head] + [bonus_share]


def _suggest_fan_out(
    trial: optuna.Trial,
    prefix: str,
    family: str,
    k: int,
    budget: int,
    optimal: Callable[[], tuple[int, ...]],
) -> tuple[int, ...]:
    if family == "optimal":
        return optimal()
    if family == "geometric":
        ratio = trial.suggest_float(f"{prefix}_ratio", *RATIO_RANGE)
        bonus = trial.suggest_float(f"{prefix}_bonus", 0.0, 1.0)
        return allocate(budget, geometric_weights(k, ratio, bonus))
    weights = [trial.suggest_float(f"{prefix}_w{j}", 0.0, 1.0) for j in range(k + 1)]
    return allocate(budget, weights)


def _need_allocator(space: SearchSpace, optimal: Allocator | None) -> None:
    if optimal is None and ("optimal" in space.families or "optimal" in space.miss_families):
        raise SchemaError(
            "SearchSpace: the 'optimal' fan-out family needs an allocator (see theory.allocator)"
        )


def policy_from_trial(
    trial: optuna.Trial, space: SearchSpace, optimal: Allocator | None = None
) -> Policy:
    """Sample one SSD policy from ``space`` (the only place trial parameters become a Policy).

    ``optimal`` supplies the analytic allocation for the ``optimal`` family.
    """
    _need_allocator(space, optimal)
    k = trial.suggest_int("k", 1, space.k_max)
    budget = trial.suggest_int("budget", 1, space.m_max, log=True)
    rescale = trial.suggest_float("rescale", *RESCALE_RANGE) if space.temperature > 0 else 1.0
    fallback = trial.suggest_categorical("fallback", space.offered_fallbacks)
    threshold = (
        trial.suggest_int("auto_threshold", 2, space.batch_size)
        if fallback == "auto"
        else Policy.auto_threshold
    )
    policy = Policy(
        mode="ssd",
        k=k,
        fan_out=(budget,) + (0,) * k,
        rescale=rescale,
        fallback=fallback,
        auto_threshold=threshold,
    )
    miss_kind = policy.fallback_for(space.batch_size)

    def best(proposer: str) -> Callable[[], tuple[int, ...]]:
        return lambda: optimal(k, budget, proposer, rescale)  # type: ignore[misc]

    hit_family = trial.suggest_categorical("hit_family", space.families)
    fan_out = _suggest_fan_out(trial, "hit", hit_family, k, budget, best("hit"))
    miss_family = trial.suggest_categorical("miss_family", space.miss_families)
    same = miss_family == "same"
    fan_out_miss = (
        fan_out
        if same
        else _suggest_fan_out(trial, "miss", miss_family, k, budget, best(miss_kind))
    )
    return dataclasses.replace(policy, fan_out=fan_out, fan_out_miss=fan_out_miss)


def params_for_policy(
    policy: Policy, space: SearchSpace, optimal: Allocator | None = None
) -> dict[str, Any] | None:
    """Trial parameters that ``policy_from_trial`` maps back to exactly ``policy`` (for enqueueing).

    A list equal to the analytic optimum is expressed as the ``optimal`` family, so the sampler
    learns from it; any other list through ``free`` weights. None when the policy lies outside
    the space (not SSD, k or M out of range, a fallback or rescale not offered, or no family
    that can express a list).
    """
    _need_allocator(space, optimal)
    if policy.mode != "ssd" or policy.k > space.k_max or policy.budget > space.m_max:
        return None
    if policy.fallback not in space.offered_fallbacks or (
        space.temperature == 0 and policy.rescale != 1.0
    ):
        return None
    if policy.fallback == "auto" and not 2 <= policy.auto_threshold <= space.batch_size:
        return None
    if space.temperature > 0 and not RESCALE_RANGE[0] <= policy.rescale <= RESCALE_RANGE[1]:
        return None
    params: dict[str, Any] = {"k": policy.k, "budget": policy.budget, "fallback": policy.fallback}
    if space.temperature > 0:
        params["rescale"] = policy.rescale
    if policy.fallback == "auto":
        params["auto_threshold"] = policy.auto_threshold
    miss_kind = policy.fallback_for(space.batch_size)
    lists = (
        ("hit", policy.fan_out, space.families, "hit"),
        ("miss", policy.fan_out_miss, space.miss_families, miss_kind),
    )
    for prefix, fan, families, proposer in lists:
        if prefix == "miss" and fan == policy.fan_out and "same" in families:
            params["miss_family"] = "same"
        elif "optimal" in families and fan == optimal(
            policy.k, policy.budget, proposer, policy.rescale
        ):  # type: ignore[misc]
            params[f"{prefix}_family"] = "optimal"
        elif "free" in families:
            params[f"{prefix}_family"] = "free"
            params.update({f"{prefix}_w{j}": f / max(fan) for j, f in enumerate(fan)})
        else:
            return None
    return params


# -- constraint -----------------------------------------------------------------------------------
def cache_memory_bytes(policy: Policy, profile: Profile, batch_size: int) -> int:
    """Draft memory the speculation cache needs: B*M*k draft distributions plus the branches' KV.

    Each of the B*M branches stores k draft distributions of ``vocab_size`` entries of
    ``dist_bytes`` and k tokens of draft KV (``draft_kv_bytes_per_token``). 0 for AR and SD.
    """
    if policy.mode != "ssd":
        return 0
    cached_tokens = batch_size * policy.budget * policy.k
    return cached_tokens * (
        profile.vocab_size * profile.dist_bytes + profile.draft_kv_bytes_per_token
    )
