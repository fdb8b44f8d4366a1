"""The optimizer's objective: simulated decode throughput of one policy, with common random numbers.

Every trial of a study is simulated with the same seed, so two trials differ only by their
policy, never by the luck of their random draws. A trial stores its policy and the run's summary
numbers as one user attribute (``result``); a policy whose speculation cache does not fit the
draft's memory is marked infeasible (Optuna constraint ``cache_memory`` > 0) and never simulated.

Imports the simulator lazily (``ssdsim.simulator``); never torch, executor or kernels.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import fmean, pstdev
from typing import Any

import optuna

from ssdsim.optimize.space import Allocator, SearchSpace, cache_memory_bytes, policy_from_trial
from ssdsim.policy import Policy
from ssdsim.profile import Profile
from ssdsim.replay import Replay, applies
from ssdsim.trace import RunSummary
from ssdsim.workload import Workload

# (policy, workload, seed) -> summary of one simulated run.
Simulate = Callable[[Policy, Workload, int], RunSummary]

FIXED_POLICY_ATTR = "fixed_policy"  # enqueued trials that evaluate a given policy, not sampled
LABEL_ATTR = "seed_label"  # name of an enqueued point (baseline or analytic seed)
RESULT_ATTR = "result"
WORKER_ATTR = "worker"
METRICS = ("tokens_per_s", "batch_tokens_per_s", "hit_rate", "mean_accepted_len", "tokens_per_step")


def simulator_for(profile: Profile, replay: Replay | None = None) -> Simulate:
    """The real simulator bound to one profile (and to a replay of the prompts' greedy texts,
    used where it applies: T = 0 with greedy drafting)."""
    from ssdsim.simulator import simulate

    def run(policy: Policy, workload: Workload, seed: int) -> RunSummary:
        used = replay if replay is not None and applies(policy, workload) else None
        return simulate(profile, policy, workload, seed=seed, replay=used)

    return run


def worker_id() -> str:
    """``host:pid`` of this process (lets a resumed study tell dead workers' trials from live ones)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Evaluation:
    """A policy's simulated performance, averaged over one or more seeds."""

    policy: Policy
    tokens_per_s: float
    batch_tokens_per_s: float
    hit_rate: float | None
    mean_accepted_len: float
    tokens_per_step: float
    tokens_per_s_std: float = 0.0
    seeds: int = 1
    cache_memory_bytes: int = 0

    @property
    def label(self) -> str:
        return self.policy.label()

    def rate(self, metric: str) -> float:
        """The evaluation's value of an objective metric (``settings.OBJECTIVES``)."""
        return float(getattr(self, metric))

    @classmethod
    def from_summaries(
        cls, policy: Policy, summaries: Sequence[RunSummary], memory_bytes: int = 0
    ) -> Evaluation:
        def mean(name: str) -> float:
            return fmean(getattr(s, name) for s in summaries)

        hits = [s.hit_rate for s in summaries if s.hit_rate is not None]
        tps = [s.tokens_per_s for s in summaries]
        return cls(
            policy=policy,
            tokens_per_s=fmean(tps),
            batch_tokens_per_s=mean("batch_tokens_per_s"),
            hit_rate=fmean(hits) if hits else None,
            mean_accepted_len=mean("mean_accepted_len"),
            tokens_per_step=mean("tokens_per_step"),
            tokens_per_s_std=pstdev(tps) if len(tps) > 1 else 0.0,
            seeds=len(summaries),
            cache_memory_bytes=memory_bytes,
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "policy"
        }
        return {"label": self.label, "policy": self.policy.to_dict(), **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        kw = {
            f.name: data[f.name]
            for f in dataclasses.fields(cls)
            if f.name != "policy" and f.name in data
        }
        return cls(policy=Policy.from_dict(data["policy"]), **kw)


def evaluate(
    policy: Policy,
    workload: Workload,
    simulate: Simulate,
    seeds: Sequence[int],
    memory_bytes: int = 0,
) -> Evaluation:
    """Simulate ``policy`` once per seed and average."""
    return Evaluation.from_summaries(
        policy, [simulate(policy, workload, s) for s in seeds], memory_bytes
    )


class Objective:
    """Optuna objective: maximise a simulated rate (``metric``: tokens/s per sequence by default,
    or the batch's tokens/s); infeasible trials score 0."""

    def __init__(
        self,
        profile: Profile,
        workload: Workload,
        space: SearchSpace,
        *,
        seed: int,
        cache_limit_bytes: int,
        simulate: Simulate | None = None,
        optimal: Allocator | None = None,
        metric: str = "tokens_per_s",
    ) -> None:
        self.profile = profile
        self.metric = metric
        self.optimal = optimal
        self.workload = workload
        self.space = space
        self.seed = seed
        self.cache_limit_bytes = cache_limit_bytes
        self.simulate = simulate or simulator_for(profile)
        self.worker = worker_id()

    def policy_for(self, trial: optuna.Trial) -> Policy:
        fixed = trial.user_attrs.get(FIXED_POLICY_ATTR)
        return (
            Policy.from_dict(fixed)
            if fixed is not None
            else policy_from_trial(trial, self.space, self.optimal)
        )

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, self.worker)
        policy = self.policy_for(trial)
        memory = cache_memory_bytes(policy, self.profile, self.workload.batch_size)
        trial.set_constraint("cache_memory", memory - self.cache_limit_bytes)
        if memory > self.cache_limit_bytes:
            result = {
                "policy": policy.to_dict(),
                "label": policy.label(),
                "feasible": False,
                "cache_memory_bytes": memory,
            }
            trial.set_user_attr(RESULT_ATTR, result)
            return 0.0
        summary = self.simulate(policy, self.workload, self.seed)
        result = {
            "policy": policy.to_dict(),
            "label": policy.label(),
            "feasible": True,
            "cache_memory_bytes": memory,
        }
        result.update({m: getattr(summary, m) for m in METRICS})
        trial.set_user_attr(RESULT_ATTR, result)
        return float(getattr(summary, self.metric))
