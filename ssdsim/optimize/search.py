"""Run one study: open (or resume) it, enqueue baselines and seeds, search, re-evaluate the best.

``optimize(profile, workload, settings)`` is the library entry point behind
``python -m ssdsim.optimize``. The search maximises simulated tokens/s per sequence with one
seed for every trial (common random numbers): first the sampler (TPE), then a local polish
around the incumbent (polish.py). The best few distinct policies and the baselines are then
re-simulated with fresh seeds and more prompts (select.py); those are the reported numbers.

Never imports torch, executor or kernels.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from typing import Any

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from ssdsim.optimize import seeds as seedpts
from ssdsim.optimize.objective import Objective, Simulate, simulator_for, worker_id
from ssdsim.optimize.polish import polish
from ssdsim.optimize.select import Result, summarize
from ssdsim.optimize.settings import Settings, search_workload, space_for
from ssdsim.optimize.space import SearchSpace
from ssdsim.optimize.storage import (
    complete_count,
    fail_stale_trials,
    open_storage,
    open_study,
    own_new_trials,
    study_name,
)
from ssdsim.optimize.theory import allocator
from ssdsim.profile import Profile
from ssdsim.workload import Workload

log = logging.getLogger(__name__)


def study_config(
    profile: Profile, workload: Workload, space: SearchSpace, settings: Settings, limit: int
) -> dict[str, Any]:
    """Everything that defines a study's objective (its fingerprint names the study)."""
    return {
        "profile": profile.to_dict(),
        "workload": workload.to_dict(),
        "space": dataclasses.asdict(space),
        "cache_memory_bytes": limit,
        "seed": settings.seed,
        "search_tokens": settings.search_tokens,
        # only a non-default objective enters the fingerprint: studies made before the
        # objective existed keep their names and resume
        **({"objective": settings.objective} if settings.objective != "tokens_per_s" else {}),
        # likewise a replay, where it applies (T = 0): another text is another objective
        **(
            {"replay": settings.replay.digest}
            if settings.replay is not None and workload.temperature == 0
            else {}
        ),
    }


def make_sampler(kind: str, seed: int) -> optuna.samplers.BaseSampler:
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    multivariate = kind == "tpe-multivariate"
    if not multivariate:
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10)
    # group=True: the fan-out parameters exist only for some k and families (conditional space).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, n_startup_trials=10
        )


def _sample_until(
    study: optuna.Study,
    objective: Objective,
    target: int,
    settings: Settings,
    deadline: float | None,
) -> None:
    """Let the sampler run until the study holds ``target`` finished trials (or the deadline)."""
    remaining = target - complete_count(study)
    left_s = None if deadline is None else deadline - time.monotonic()
    if remaining <= 0 or (left_s is not None and left_s <= 0):
        return
    study.optimize(
        objective,
        n_trials=remaining,
        timeout=left_s,
        callbacks=[MaxTrialsCallback(target, states=(TrialState.COMPLETE,))],
        show_progress_bar=settings.progress,
    )


def run_study(study: optuna.Study, objective: Objective, settings: Settings) -> None:
    """Run until the study holds ``n_trials`` finished trials or the timeout passes: the sampler
    first, the last ``polish_fraction`` of the trials on a local polish (polish.py), and the
    sampler again for whatever the polish leaves unused."""
    if complete_count(study) >= settings.n_trials:
        log.info(
            "study %s already holds %d finished trials", study.study_name, complete_count(study)
        )
        return
    deadline = None if settings.timeout_s is None else time.monotonic() + settings.timeout_s
    n_polish = int(settings.n_trials * settings.polish_fraction)
    _sample_until(study, objective, settings.n_trials - n_polish, settings, deadline)
    polish(study, objective, settings.n_trials, settings.progress, deadline)
    _sample_until(study, objective, settings.n_trials, settings, deadline)


def prepare(
    profile: Profile, workload: Workload, settings: Settings, simulate: Simulate | None = None
) -> tuple[optuna.Study, Objective]:
    """Open or resume the study, fail trials of dead workers, enqueue baselines and seeds."""
    space = space_for(workload, settings)
    limit = settings.cache_memory_bytes or profile.cache_memory_bytes
    config = study_config(profile, workload, space, settings, limit)
    name = settings.study or study_name(
        profile.name, workload.name, workload.batch_size, workload.temperature, config
    )
    study = open_study(own_new_trials(open_storage(settings.storage), worker_id()), name, config)
    fail_stale_trials(study)
    # Seeded per existing trial count: a fresh run is reproducible, a resumed one or a second
    # worker does not replay the first one's draws.
    study.sampler = make_sampler(
        settings.sampler,
        (settings.seed if settings.sampler_seed is None else settings.sampler_seed)
        + len(study.get_trials(deepcopy=False)),
    )
    optimal = allocator(profile, workload.temperature)
    points = seedpts.baseline_points(space)
    if settings.analytic_seeds:
        points += seedpts.analytic_points(space, optimal)
    seedpts.enqueue_points(study, space, points, optimal)
    objective = Objective(
        profile,
        search_workload(workload, settings),
        space,
        seed=settings.seed,
        cache_limit_bytes=limit,
        simulate=simulate,
        optimal=optimal,
        metric=settings.objective,
    )
    return study, objective


def optimize(
    profile: Profile,
    workload: Workload,
    settings: Settings | None = None,
    simulate: Simulate | None = None,
) -> Result:
    """Search for the best policy for ``workload`` on ``profile``; see the module docstring."""
    settings = settings or Settings()
    t0 = time.perf_counter()
    simulate = simulate or simulator_for(profile, settings.replay)
    study, objective = prepare(profile, workload, settings, simulate)
    run_study(study, objective, settings)
    result = summarize(study, profile, workload, settings, simulate)
    result.elapsed_s = time.perf_counter() - t0
    return result
