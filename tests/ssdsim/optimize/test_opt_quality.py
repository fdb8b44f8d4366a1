"""Does the search find good answers? Exhaustive oracle, analytic oracle, and a metamorphic check."""

from __future__ import annotations

import dataclasses
import itertools

import optuna

from ssdsim import (
    Chance,
    Coverage,
    ForwardLatency,
    LinkLatency,
    Policy,
    Profile,
    Workload,
    load_profile,
)
from ssdsim.optimize.objective import RESULT_ATTR, simulator_for
from ssdsim.optimize.search import optimize, prepare, run_study
from ssdsim.optimize.settings import Settings
from ssdsim.optimize.sweep import sweep
from ssdsim.optimize.theory import optimal_lists, policy_hit_rate

optuna.logging.set_verbosity(optuna.logging.WARNING)
PAPER = "paper-llama70b-h100"
NO_THEORY = {
    "families": ("geometric", "free"),
    "miss_families": ("geometric", "free", "same"),
    "analytic_seeds": False,
}


def compositions(total: int, parts: int):
    for cuts in itertools.combinations(range(total + parts - 1), parts - 1):
        bounds = (-1, *cuts, total + parts - 1)
        yield tuple(b - a - 1 for a, b in itertools.pairwise(bounds))


def test_best_found_in_200_trials_is_within_1pct_of_the_exhaustive_best():
    """k <= 2, M <= 4, both fallbacks: 848 SSD policies, every one simulated with the study's seed."""
    profile = load_profile(PAPER)
    workload = Workload(batch_size=2, output_len_tokens=128)
    settings = Settings(
        n_trials=200,
        storage="memory",
        k_max=2,
        m_max=4,
        search_tokens=512,
        progress=False,
        **NO_THEORY,
    )
    study, objective = prepare(profile, workload, settings)
    run_study(study, objective, settings)
    found = max(
        t.value for t in study.trials if t.user_attrs[RESULT_ATTR]["policy"]["mode"] == "ssd"
    )
    simulate = simulator_for(profile)
    best = 0.0
    for k, m, fallback in itertools.product((1, 2), (1, 2, 3, 4), ("jit", "fast")):
        for hit, miss in itertools.product(list(compositions(m, k + 1)), repeat=2):
            p = Policy(mode="ssd", k=k, fan_out=hit, fan_out_miss=miss, fallback=fallback)
            best = max(best, simulate(p, objective.workload, settings.seed).tokens_per_s)
    assert len(study.trials) == 200
    assert found >= 0.99 * best, (found, best)


def powerlaw_profile() -> Profile:
    """Power-law coverage (beta per position, r = 0.5) and low acceptance, so the optimal fan-out
    is far from uniform; drafting fits inside verification, so the budget costs nothing and a jit
    miss costs k draft forwards: throughput follows the hit rate."""
    return Profile(
        name="powerlaw",
        target=ForwardLatency(fixed_s=0.02),
        draft=ForwardLatency(fixed_s=0.003),
        link=LinkLatency(fixed_s=1e-4),
        chance=Chance(
            alpha=(0.5,),
            coverage=Coverage(beta_reject=(0.6, 0.5, 0.45, 0.4), r=0.5, beta_bonus=0.3),
        ),
        vocab_size=1000,
    )


def with_optimal_lists(profile: Profile, p: Policy) -> Policy:
    hit, miss = optimal_lists(profile, 0.0, 1.0, p.k, p.budget, p.fallback)
    return dataclasses.replace(p, fan_out=hit, fan_out_miss=miss)


def test_found_fan_out_hits_within_1pct_of_the_analytic_optimum():
    """The sampler sees only geometric and free lists (no analytic family, no analytic seeds)."""
    profile = powerlaw_profile()
    uniform = Policy(mode="ssd", k=4, fan_out=(4, 3, 3, 3, 3), fan_out_miss=(4, 3, 3, 3, 3))
    optimum = with_optimal_lists(profile, uniform)
    # the test has teeth: a hand-tuned uniform fan-out misses the bar on this profile
    assert policy_hit_rate(profile, uniform, 0.0, 1) < 0.98 * policy_hit_rate(
        profile, optimum, 0.0, 1
    )
    settings = Settings(
        n_trials=200,
        storage="memory",
        k_max=4,
        m_max=16,
        fallbacks=("jit",),
        progress=False,
        top_n=3,
        reeval_seeds=2,
        search_tokens=4096,
        **NO_THEORY,
    )
    found = optimize(profile, Workload(batch_size=1), settings).best_ssd.policy
    best = with_optimal_lists(profile, found)  # the analytic allocation at the found k and M
    assert policy_hit_rate(profile, found, 0.0, 1) >= 0.99 * policy_hit_rate(
        profile, best, 0.0, 1
    ), found.label()


def fallback_profile(draft_s: float) -> Profile:
    """Verification 30 ms; a jit miss costs k draft forwards of ``draft_s``; the fast speculator is
    nearly free but its proposals are rarely accepted."""
    return Profile(
        name=f"fallback-draft-{draft_s * 1000:g}ms",
        target=ForwardLatency(fixed_s=0.03, token_s=1e-5),
        draft=ForwardLatency(fixed_s=draft_s, token_s=1e-6),
        link=LinkLatency(fixed_s=1e-4),
        chance=Chance(
            alpha=(0.8,),
            alpha_fast=(0.2,),
            coverage=Coverage(beta_reject=(0.5,), r=0.7, beta_bonus=0.4),
        ),
        fast_s=1e-4,
        vocab_size=1000,
    )


def test_auto_threshold_moves_to_smaller_batches_when_misses_cost_more():
    """Each sweep point is a study with jit and fast in its space; the threshold is the smallest
    batch size from which the best fast policy beats the best jit one. Tripling the draft's
    forward time triples a jit miss's cost, so fast must win from a smaller batch on."""
    settings = Settings(
        n_trials=30, storage="memory", k_max=6, m_max=24, families=("optimal",), miss_families=("same", "optimal"),
        progress=False, top_n=1, reeval_seeds=1, search_tokens=1024,
    )  # fmt: skip
    batch_sizes = (1, 2, 4, 8, 16, 32)
    thresholds = []
    for draft_s in (0.002, 0.006):
        table = sweep(
            fallback_profile(draft_s),
            Workload(output_len_tokens=128),
            batch_sizes,
            (0.0,),
            settings,
        )
        thresholds.append(table["auto_threshold"]["0"])
    cheap, dear = thresholds
    assert cheap is not None and dear is not None, thresholds
    assert dear < cheap, thresholds
