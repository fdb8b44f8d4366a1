"""Local polish after the sampler: try the incumbent's neighbours until none is better.

TPE gets near the best (k, M) quickly but resolves small differences (a family, a fallback, M
off by one, one branch at another position) slowly. The polish enqueues the best SSD trial's
neighbours (the analytic family for either list, ``same`` for the miss list, the other
fallback, k +- 1, M +- 1 and +- M/8, rescale and geometric knobs +- 0.05, and one branch moved
between neighbouring positions or to/from the bonus slot), each only if its policy was not tried
yet, and climbs from each new best until no neighbour is left untried or the budget is spent. Every
neighbour is an ordinary trial of the study (stored, resumable).

Never imports torch, executor or kernels.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import optuna
from optuna.trial import FixedTrial, FrozenTrial, TrialState
from tqdm import tqdm

from ssdsim.optimize.objective import FIXED_POLICY_ATTR, RESULT_ATTR, Objective
from ssdsim.optimize.space import RATIO_RANGE, RESCALE_RANGE, SearchSpace, policy_from_trial
from ssdsim.optimize.storage import complete_count
from ssdsim.policy import Policy

log = logging.getLogger(__name__)
STEP = 0.05  # step of the continuous knobs
CHUNK = 8  # neighbours evaluated before looking for a new best


def _clip(x: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, x))


def _resized(params: dict[str, Any], k: int) -> dict[str, Any]:
    """``params`` with lookahead k: free weights trimmed, or extended by repeating the last one."""
    out = {
        n: v
        for n, v in params.items()
        if not any(n.startswith(f"{p}_w") and int(n[len(p) + 2 :]) > k for p in ("hit", "miss"))
    }
    out["k"] = k
    for prefix in ("hit", "miss"):
        if out.get(f"{prefix}_family") == "free":
            for j in range(params["k"] + 1, k + 1):
                out[f"{prefix}_w{j}"] = params[f"{prefix}_w{params['k']}"]
    return out


def _family_moves(params: dict[str, Any], space: SearchSpace) -> list[dict[str, Any]]:
    out = []
    for prefix, families in (("hit", space.families), ("miss", space.miss_families)):
        for family in ("optimal", "same"):
            if family in families and params.get(f"{prefix}_family") != family:
                moved = {n: v for n, v in params.items() if not n.startswith(f"{prefix}_")}
                out.append({**moved, f"{prefix}_family": family})
    return out


def _knob_moves(params: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    ranges = {
        "rescale": RESCALE_RANGE,
        "hit_ratio": RATIO_RANGE,
        "miss_ratio": RATIO_RANGE,
        "hit_bonus": (0.0, 1.0),
        "miss_bonus": (0.0, 1.0),
    }
    for name, (lo, hi) in ranges.items():
        if name in params:
            for d in (-STEP, STEP):
                out.append({**params, name: _clip(params[name] + d, lo, hi)})
    return out


def _transfer_moves(
    params: dict[str, Any], policy: Policy, space: SearchSpace
) -> list[dict[str, Any]]:
    """Move one branch between neighbouring positions, or to and from the bonus slot (free lists)."""
    out = []
    lists = (
        ("hit", policy.fan_out, space.families),
        ("miss", policy.fan_out_miss, space.miss_families),
    )
    for prefix, fan, families in lists:
        if "free" not in families:
            continue
        k = len(fan) - 1
        pairs = {(a, a + 1) for a in range(k)} | {(a, k) for a in range(k - 1)}
        for src, dst in [(a, b) for a, b in sorted(pairs)] + [(b, a) for a, b in sorted(pairs)]:
            if fan[src] > 0:
                new = list(fan)
                new[src], new[dst] = new[src] - 1, new[dst] + 1
                kept = {n: v for n, v in params.items() if not n.startswith(f"{prefix}_")}
                weights = {f"{prefix}_w{j}": f / max(new) for j, f in enumerate(new)}
                out.append({**kept, f"{prefix}_family": "free", **weights})
    return out


def neighbours(params: dict[str, Any], policy: Policy, space: SearchSpace) -> list[dict[str, Any]]:
    """Parameter sets one move away from ``params`` (the trial of ``policy``), likeliest first."""
    k, m = params["k"], params["budget"]
    out = _family_moves(params, space)
    for fallback in space.offered_fallbacks:
        if fallback not in (params["fallback"], "auto"):
            out.append(
                {n: v for n, v in {**params, "fallback": fallback}.items() if n != "auto_threshold"}
            )
    out += [_resized(params, k + d) for d in (-1, 1) if 1 <= k + d <= space.k_max]
    for d in sorted({-max(1, m // 8), -1, 1, max(1, m // 8)}):
        if 1 <= m + d <= space.m_max:
            out.append({**params, "budget": m + d})
    return out + _knob_moves(params) + _transfer_moves(params, policy, space)


def _best_ssd(study: optuna.Study) -> FrozenTrial | None:
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if FIXED_POLICY_ATTR not in t.user_attrs
        and RESULT_ATTR in t.user_attrs
        and t.user_attrs[RESULT_ATTR]["feasible"]
    ]
    return max(done, key=lambda t: t.value) if done else None


def polish(
    study: optuna.Study,
    objective: Objective,
    target: int,
    progress: bool = False,
    deadline: float | None = None,
) -> int:
    """Hill-climb from the best SSD trial until the study holds ``target`` finished trials (all
    workers together) or ``time.monotonic()`` passes ``deadline``; returns the trials this call ran.

    First improvement: neighbours are tried ``CHUNK`` at a time, and the climb restarts from the
    new best as soon as a chunk improves on it; it stops when no untried neighbour is left.
    """
    labels = (
        t.user_attrs.get(RESULT_ATTR, {}).get("label") for t in study.get_trials(deepcopy=False)
    )
    seen = {label for label in labels if label}
    used = 0
    bar = tqdm(
        total=max(0, target - complete_count(study)),
        desc="polish",
        disable=not progress,
        leave=False,
    )
    while (left := target - complete_count(study)) > 0 and (
        deadline is None or time.monotonic() < deadline
    ):
        best = _best_ssd(study)
        batch = _untried(best, objective, seen, min(CHUNK, left)) if best is not None else []
        if not batch:
            break
        for params in batch:
            study.enqueue_trial(params)
        study.optimize(objective, n_trials=len(batch))
        used += len(batch)
        bar.update(len(batch))
    bar.close()
    log.info("study %s: polish ran %d trials", study.study_name, used)
    return used


def _untried(
    best: FrozenTrial, objective: Objective, seen: set[str], n: int
) -> list[dict[str, Any]]:
    """Up to ``n`` neighbours of ``best`` whose policy no trial has evaluated (marked as seen)."""
    policy = Policy.from_dict(best.user_attrs[RESULT_ATTR]["policy"])
    out = []
    for params in neighbours(best.params, policy, objective.space):
        label = policy_from_trial(FixedTrial(params), objective.space, objective.optimal).label()
        if label not in seen:
            seen.add(label)
            out.append(params)
            if len(out) == n:
                break
    return out
