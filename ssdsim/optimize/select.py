"""Choosing what to report: re-evaluate the best few policies and the baselines, pick the best.

The search's own numbers come from one simulation seed shared by every trial (common random
numbers), which favours whichever policy was lucky with that seed; the reported numbers come from
fresh seeds and more prompts. Never imports torch, executor or kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from ssdsim._schema import SchemaError
from ssdsim.optimize import seeds as seedpts
from ssdsim.optimize.objective import RESULT_ATTR, Evaluation, Simulate, evaluate
from ssdsim.optimize.settings import Settings, reeval_workload
from ssdsim.optimize.space import cache_memory_bytes
from ssdsim.optimize.storage import describe_storage
from ssdsim.policy import Policy
from ssdsim.profile import Profile
from ssdsim.workload import Workload


@dataclass
class Result:
    """What a study found: the re-evaluated best policy and baselines, and where the study lives."""

    best: Evaluation
    best_ssd: Evaluation | None
    baselines: dict[str, Evaluation]
    candidates: list[Evaluation]
    study_name: str
    storage: str
    n_trials: int
    search_values: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    reeval_workload: Workload | None = None
    cache_limit_bytes: int = 0
    objective: str = "tokens_per_s"


def finished(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials that carry a result (every trial the objective finished)."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if RESULT_ATTR in t.user_attrs
    ]


def best_by_label(trials: list[FrozenTrial], mode: str) -> list[tuple[float, dict[str, Any]]]:
    """Feasible results of one mode, one per distinct policy, best search value first."""
    best: dict[str, tuple[float, dict[str, Any]]] = {}
    for t in trials:
        r = t.user_attrs[RESULT_ATTR]
        if (
            r["feasible"]
            and r["policy"]["mode"] == mode
            and (r["label"] not in best or t.value > best[r["label"]][0])
        ):
            best[r["label"]] = (float(t.value), r)
    return sorted(best.values(), key=lambda x: -x[0])


T = TypeVar("T")


def diverse(items: Sequence[T], n: int, *families: Callable[[T], Hashable]) -> list[T]:
    """Up to ``n`` of ``items`` (best first), in their order, chosen in passes: the first item
    of each family under ``families[0]``, then of each family under ``families[1]`` not yet
    represented, ..., then the next best of any.

    Re-evaluating or measuring the five best policies of a search is a waste when they are one
    policy five times over (the same k and fallback, a branch moved): this keeps the best of
    each kind first.
    """
    chosen: list[int] = []
    for fam in (*families, None):
        seen = {fam(items[i]) for i in chosen} if fam else set()
        for i, item in enumerate(items):
            key = fam(item) if fam else i
            if len(chosen) < n and i not in chosen and key not in seen:
                chosen.append(i)
                seen.add(key)
    return [items[i] for i in sorted(chosen)]


def _fallback(r: tuple[float, dict[str, Any]]) -> str:
    return r[1]["policy"]["fallback"]


def _k_fallback(r: tuple[float, dict[str, Any]]) -> tuple[int, str]:
    return r[1]["policy"]["k"], r[1]["policy"]["fallback"]


def summarize(
    study: optuna.Study,
    profile: Profile,
    workload: Workload,
    settings: Settings,
    simulate: Simulate,
) -> Result:
    """Re-evaluate the top SSD policies, the two best SD, AR and the paper default; pick the best.

    The top SSD policies (``settings.top_n``) are diverse: the best of each miss fallback, then
    the best of each further (k, fallback), then the next best (``diverse``).

    The best is the fastest re-evaluated candidate that fits the cache memory, baselines
    included, so it is never slower than a baseline it is compared with.
    """
    trials = finished(study)
    ssd = diverse(best_by_label(trials, "ssd"), settings.top_n, _fallback, _k_fallback)
    sd = best_by_label(trials, "sd")[:2]
    if not ssd and not sd:
        raise SchemaError(
            f"study {study.study_name!r} holds no feasible finished trial yet; run more trials"
        )
    work = reeval_workload(workload, settings)
    evaluator = _Reevaluator(profile, work, simulate, settings, workload.batch_size)
    top_ssd = [evaluator(r["policy"]) for _, r in ssd]
    top_sd = [evaluator(r["policy"]) for _, r in sd]
    baselines = {"ar": evaluator(Policy(mode="ar").to_dict())}
    if top_sd:
        baselines["sd"] = max(top_sd, key=lambda e: e.rate(settings.objective))
    baselines["paper_default"] = evaluator(seedpts.paper_default().to_dict())
    limit = settings.cache_memory_bytes or profile.cache_memory_bytes
    pool = [e for e in top_ssd + top_sd + list(baselines.values()) if e.cache_memory_bytes <= limit]
    candidates = sorted(
        {e.label: e for e in pool}.values(), key=lambda e: -e.rate(settings.objective)
    )
    ssd_pool = [e for e in candidates if e.policy.mode == "ssd"]
    return Result(
        best=candidates[0],
        best_ssd=ssd_pool[0] if ssd_pool else None,
        baselines=baselines,
        candidates=candidates,
        study_name=study.study_name,
        storage=describe_storage(settings.storage),
        n_trials=len(trials),
        search_values={
            r["label"]: v for mode in ("ar", "sd", "ssd") for v, r in best_by_label(trials, mode)
        },
        history=[
            {"number": t.number, "value": t.value, **t.user_attrs[RESULT_ATTR]} for t in trials
        ],
        reeval_workload=work,
        cache_limit_bytes=limit,
        objective=settings.objective,
    )


class _Reevaluator:
    """Simulates a policy (given as a dict) on the re-evaluation workload and seeds, once per label."""

    def __init__(
        self,
        profile: Profile,
        work: Workload,
        simulate: Simulate,
        settings: Settings,
        batch_size: int,
    ) -> None:
        self.profile, self.work, self.simulate, self.batch_size = (
            profile,
            work,
            simulate,
            batch_size,
        )
        self.seeds = [settings.seed + 1 + i for i in range(settings.reeval_seeds)]
        self.done: dict[str, Evaluation] = {}

    def __call__(self, policy_dict: dict[str, Any]) -> Evaluation:
        p = Policy.from_dict(policy_dict)
        if p.label() not in self.done:
            memory = cache_memory_bytes(p, self.profile, self.batch_size)
            self.done[p.label()] = evaluate(p, self.work, self.simulate, self.seeds, memory)
        return self.done[p.label()]
