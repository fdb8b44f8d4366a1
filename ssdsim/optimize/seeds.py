"""Points enqueued in every study: the baselines (AR, SD for every k, the paper's default SSD) and
the analytic optimal fan-out allocation, so the search starts from what theory predicts.

A point inside the search space is enqueued as trial parameters (the sampler learns from it); a
point outside it (AR, SD, or a policy the space cannot express) as a fixed policy that the
objective evaluates as is. Each carries a label, so a resumed study re-enqueues only what is
missing. Never imports torch, executor or kernels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from ssdsim.optimize.objective import FIXED_POLICY_ATTR, LABEL_ATTR, WORKER_ATTR
from ssdsim.optimize.space import Allocator, SearchSpace, params_for_policy
from ssdsim.policy import Policy, paper_default

log = logging.getLogger(__name__)

AR_LABEL = "ar"
PAPER_LABEL = "paper-default"
SEED_KS = (2, 4, 7, 10)  # lookaheads at which the analytic allocation is seeded


@dataclass(frozen=True)
class SeedPoint:
    label: str
    policy: Policy


def sd_label(k: int) -> str:
    return f"sd k={k}"


def baseline_points(space: SearchSpace) -> list[SeedPoint]:
    """AR, SD at every k in 1..k_max, and the paper's default SSD (k=7, uniform fan-out 3, jit)."""
    points = [SeedPoint(AR_LABEL, Policy(mode="ar"))]
    points += [SeedPoint(sd_label(k), Policy(mode="sd", k=k)) for k in range(1, space.k_max + 1)]
    points.append(SeedPoint(PAPER_LABEL, paper_default()))
    return points


def analytic_points(space: SearchSpace, optimal: Allocator) -> list[SeedPoint]:
    """The analytic optimal fan-out (after hit and after miss) at a few k, budget 3(k+1), per
    fallback; with the fast fallback also budget 1: one branch, the fast speculator proposing
    nearly every step while the draft idles (a 100-trial study on the embedded pair's
    calibrated profile never sampled that corner, which its 150-trial closed loop found best
    and measured best)."""
    points = []
    fallbacks = [f for f in ("jit", "fast") if f in space.offered_fallbacks]
    for k in sorted({min(k, space.k_max) for k in SEED_KS}):
        for fallback in fallbacks:
            budgets = (3 * (k + 1), 1) if fallback == "fast" else (3 * (k + 1),)
            for budget in sorted({min(space.m_max, b) for b in budgets}, reverse=True):
                hit, miss = optimal(k, budget, "hit", 1.0), optimal(k, budget, fallback, 1.0)
                policy = Policy(mode="ssd", k=k, fan_out=hit, fan_out_miss=miss, fallback=fallback)
                points.append(SeedPoint(f"analytic k={k} M={budget} {fallback}", policy))
    return points


def _taken_labels(study: optuna.Study) -> set[str]:
    """Labels already done, queued, or running in a live worker."""
    taken = set()
    for t in study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
    ):
        label = t.user_attrs.get(LABEL_ATTR)
        if label is not None and (t.state != TrialState.RUNNING or WORKER_ATTR in t.user_attrs):
            taken.add(label)
    return taken


def enqueue_points(
    study: optuna.Study,
    space: SearchSpace,
    points: list[SeedPoint],
    optimal: Allocator | None = None,
) -> int:
    """Enqueue the points whose label the study does not hold yet; returns how many."""
    taken = _taken_labels(study)
    added = 0
    for p in points:
        if p.label in taken:
            continue
        params = params_for_policy(p.policy, space, optimal)
        if params is None:
            study.enqueue_trial(
                {}, user_attrs={LABEL_ATTR: p.label, FIXED_POLICY_ATTR: p.policy.to_dict()}
            )
        else:
            study.enqueue_trial(params, user_attrs={LABEL_ATTR: p.label})
        added += 1
    if added:
        log.info("study %s: enqueued %d baseline and seed points", study.study_name, added)
    return added
