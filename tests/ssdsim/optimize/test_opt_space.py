"""Search space: every trial maps to a valid Policy, lists sum to M by construction, enqueued points map back exactly."""

from __future__ import annotations

import itertools

import optuna
import pytest

from ssdsim import Policy, Profile, SchemaError, paper_default
from ssdsim.optimize.space import (
    SearchSpace,
    allocate,
    cache_memory_bytes,
    geometric_weights,
    params_for_policy,
    policy_from_trial,
)
from ssdsim.profile import ForwardLatency

optuna.logging.set_verbosity(optuna.logging.WARNING)


def geometric_half(k: int, budget: int, proposer: str, rescale: float) -> tuple[int, ...]:
    """A stand-in for the analytic allocator (halving per position; miss lists shifted to the front)."""
    w = geometric_weights(k, 0.5 if proposer == "hit" else 0.25, 1 / (k + 1))
    return allocate(budget, w)


def compositions(total: int, parts: int):
    """Every list of ``parts`` non-negative integers summing to ``total``."""
    for cuts in itertools.combinations(range(total + parts - 1), parts - 1):
        bounds = (-1, *cuts, total + parts - 1)
        yield tuple(b - a - 1 for a, b in itertools.pairwise(bounds))


def sample_policies(space: SearchSpace, n: int, seed: int = 0) -> list[tuple[dict, Policy]]:
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=seed), direction="maximize"
    )
    out = []
    for _ in range(n):
        trial = study.ask()
        policy = policy_from_trial(trial, space, geometric_half)
        out.append((dict(trial.params), policy))
        study.tell(trial, 0.0)
    return out


@pytest.mark.parametrize(
    "budget, weights",
    [(7, [1, 1, 1]), (5, [0.5, 0.25, 0.25, 0]), (1, [0.1, 0.9]), (24, [1] * 8), (3, [0, 0, 0])],
)
def test_allocate_sums_to_budget_and_follows_weights(budget, weights):
    out = allocate(budget, weights)
    assert sum(out) == budget and len(out) == len(weights)
    total = sum(weights) or 1
    for f, w in zip(out, weights, strict=True):
        # largest remainder: each entry is its quota rounded down or up
        quota = budget * w / total if sum(weights) else (budget if f == out[0] else 0)
        assert abs(f - quota) < 1 + 1e-9


def test_allocate_rebuilds_every_integer_list_from_its_own_weights():
    for parts in (1, 2, 3, 5):
        for total in (1, 2, 4, 7):
            for fan in compositions(total, parts):
                top = max(fan)
                assert allocate(total, [f / top for f in fan]) == fan


def test_geometric_weights_shape():
    w = geometric_weights(4, 0.5, 0.2)
    assert w[4] == pytest.approx(0.2) and sum(w) == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(w[:4]))
    assert allocate(24, geometric_weights(7, 1.0, 1 / 8)) == (3,) * 8  # the paper's uniform fan-out


@pytest.mark.parametrize("batch_size, temperature", [(1, 0.0), (4, 0.7)])
def test_every_sampled_trial_is_a_valid_policy_with_conditional_params(batch_size, temperature):
    space = SearchSpace(
        batch_size=batch_size,
        temperature=temperature,
        k_max=9,
        m_max=40,
        fallbacks=("jit", "fast", "auto"),
    )
    for params, p in sample_policies(space, 300):
        assert p.mode == "ssd" and 1 <= p.k <= 9 and 1 <= p.budget <= 40
        assert sum(p.fan_out) == sum(p.fan_out_miss) == params["budget"]
        assert len(p.fan_out) == len(p.fan_out_miss) == p.k + 1
        assert ("rescale" in params) == (temperature > 0)
        assert ("auto_threshold" in params) == (p.fallback == "auto")
        for prefix in ("hit", "miss"):
            family = params[f"{prefix}_family"]
            assert (f"{prefix}_ratio" in params) == (family == "geometric")
            assert {n for n in params if n.startswith(f"{prefix}_w")} == (
                {f"{prefix}_w{j}" for j in range(p.k + 1)} if family == "free" else set()
            )
        if params["miss_family"] == "same":
            assert p.fan_out_miss == p.fan_out
        Policy.from_dict(p.to_dict())  # round-trips through the contract's validation


def test_auto_is_not_offered_at_batch_size_one():
    space = SearchSpace(batch_size=1, fallbacks=("jit", "fast", "auto"))
    assert space.offered_fallbacks == ("jit", "fast")
    assert {p.fallback for _, p in sample_policies(space, 60)} <= {"jit", "fast"}


def _replay(space: SearchSpace, params: dict) -> Policy:
    study = optuna.create_study()
    study.enqueue_trial(params)
    trial = study.ask()
    return policy_from_trial(trial, space, geometric_half)


def test_params_for_policy_maps_back_exactly():
    space = SearchSpace(
        batch_size=8, temperature=1.0, k_max=8, m_max=64, fallbacks=("jit", "fast", "auto")
    )
    cases = [
        paper_default(),
        Policy(
            mode="ssd",
            k=4,
            fan_out=(4, 2, 1, 1, 2),
            fan_out_miss=(6, 2, 1, 1, 0),
            rescale=0.5,
            fallback="auto",
            auto_threshold=4,
        ),
        Policy(mode="ssd", k=1, fan_out=(1, 0), fan_out_miss=(0, 1), fallback="fast"),
    ]
    for p in cases:
        params = params_for_policy(p, space, geometric_half)
        assert params is not None
        assert _replay(space, params) == p


def test_every_small_list_pair_is_reachable():
    """Free weights reach every (after hit, after miss) pair with the same sum: the space is complete."""
    space = SearchSpace(k_max=2, m_max=3, fallbacks=("jit",))
    for k, m in itertools.product((1, 2), (1, 2, 3)):
        for hit, miss in itertools.product(list(compositions(m, k + 1)), repeat=2):
            if sum(hit) == 0:
                continue
            p = Policy(mode="ssd", k=k, fan_out=hit, fan_out_miss=miss)
            assert _replay(space, params_for_policy(p, space, geometric_half)) == p


def test_params_for_policy_outside_space_is_none():
    space = SearchSpace(k_max=4, m_max=10, fallbacks=("jit",))
    for p in (
        Policy(mode="sd", k=2),
        paper_default(),  # k=7 > k_max
        Policy(mode="ssd", k=2, fan_out=(4, 4, 4)),  # M=12 > m_max
        Policy(mode="ssd", k=2, fan_out=(1, 1, 1), fallback="fast"),
    ):
        assert params_for_policy(p, space, geometric_half) is None
    geo_only = SearchSpace(families=("geometric",), miss_families=("geometric",))
    assert params_for_policy(Policy(mode="ssd", k=2, fan_out=(1, 2, 3)), geo_only) is None


def test_optimal_family_uses_the_allocator_and_enqueues_as_optimal():
    space = SearchSpace(k_max=6, m_max=30, families=("optimal",), miss_families=("optimal",))
    for params, p in sample_policies(space, 40):
        assert params["hit_family"] == params["miss_family"] == "optimal"
        assert p.fan_out == geometric_half(p.k, p.budget, "hit", 1.0)
        assert p.fan_out_miss == geometric_half(p.k, p.budget, p.fallback, 1.0)
        assert params_for_policy(p, space, geometric_half) == params
    with pytest.raises(SchemaError, match="allocator"):
        policy_from_trial(optuna.create_study().ask(), space)


def test_cache_memory_counts_distributions_and_branch_kv():
    prof = Profile(
        name="m",
        target=ForwardLatency(fixed_s=1),
        draft=ForwardLatency(fixed_s=1),
        vocab_size=1000,
        dist_bytes=2,
        draft_kv_bytes_per_token=50,
    )
    p = paper_default()  # k=7, M=24
    assert cache_memory_bytes(p, prof, 4) == 4 * 24 * 7 * (1000 * 2 + 50)
    assert cache_memory_bytes(Policy(mode="sd", k=3), prof, 4) == 0


@pytest.mark.parametrize(
    "kw",
    [
        {"k_max": 0},
        {"m_max": 0},
        {"families": ("cubic",)},
        {"miss_families": ()},
        {"fallbacks": ("auto",)},
        {"batch_size": 0},
    ],
)
def test_bad_space_is_rejected(kw):
    with pytest.raises(SchemaError):
        SearchSpace(**kw)


def test_analytic_seeds_include_one_branch_with_the_fast_fallback():
    """The fast fallback's corner (one branch, the n-gram speculator proposing nearly every
    step) is seeded at every seed k, beside budget 3(k+1) for both fallbacks."""
    from ssdsim.optimize.seeds import analytic_points

    space = SearchSpace(k_max=8, m_max=30)
    points = {p.label: p.policy for p in analytic_points(space, geometric_half)}
    for k in (2, 4, 7, 8):
        one = points[f"analytic k={k} M=1 fast"]
        assert sum(one.fan_out) == sum(one.fan_out_miss) == 1 and one.fallback == "fast"
        assert f"analytic k={k} M={min(30, 3 * (k + 1))} jit" in points
    assert not any(label.endswith("M=1 jit") for label in points)
