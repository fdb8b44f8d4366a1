"""Settings of a search, and the workloads the search and the re-evaluation simulate.

Never imports torch, executor or kernels.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ssdsim._schema import SchemaError
from ssdsim.optimize.space import FAMILIES, MISS_FAMILIES, SearchSpace
from ssdsim.replay import Replay
from ssdsim.workload import Workload

# tpe: independent TPE per parameter (default: as good as the multivariate one here and ~2x
# faster, see studies/compare_samplers.py); tpe-multivariate: joint TPE over parameter groups.
SAMPLERS = ("tpe", "tpe-multivariate", "random")
# What a study maximises: tokens/s per sequence (a request's speed; the default) or the batch's
# tokens/s (throughput: a static batch runs until its slowest sequence is done, so at B > 1 a
# policy whose sequences finish at very different steps can be fast per sequence and slow per
# batch). Equal at B = 1 up to averaging (per-sequence rates vs tokens over the total time).
OBJECTIVES = ("tokens_per_s", "batch_tokens_per_s")


@dataclass(frozen=True)
class Settings:
    """How to search.

    n_trials: finished trials the study should hold (baselines and seeds included); a resumed
        study runs only the rest. timeout_s: stop this run after that many seconds.
    storage: an Optuna storage URL or journal path (None: the default journal, see storage.py).
    study: study name (None: named from profile, workload and this setup). seed: sampler seed
        and the simulation seed shared by all trials. cache_memory_bytes: draft memory for the
        speculation cache (None: the profile's). top_n: distinct SSD policies re-evaluated
        (the best of each fallback and of each (k, fallback) first: ``select.diverse``);
        reeval_seeds / reeval_scale: seeds and prompt multiplier of the re-evaluation.
        search_tokens: tokens each trial generates at least (prompts are added in whole batches).
        polish_fraction: share of the trials left to the local polish after the sampler.
        sampler_seed: seeds the sampler alone (None: ``seed``), e.g. to compare samplers on one objective.
        objective: the maximised metric, one of ``OBJECTIVES``; it also ranks the re-evaluated
        candidates and sets the speedups reported.
        replay: the workload's greedy texts (``ssdsim.replay``): at T = 0 every trial and
        re-evaluation replays its outcomes from them instead of sampling the profile's chance
        (the study's name then carries the file's digest); None: the chance model.
    """

    n_trials: int = 200
    timeout_s: float | None = None
    storage: str | None = None
    study: str | None = None
    seed: int = 0
    cache_memory_bytes: int | None = None
    k_max: int = 16
    m_max: int = 256
    fallbacks: tuple[str, ...] = ("jit", "fast")
    families: tuple[str, ...] = FAMILIES
    miss_families: tuple[str, ...] = MISS_FAMILIES
    analytic_seeds: bool = True
    search_tokens: int = 2048
    sampler_seed: int | None = None
    polish_fraction: float = 0.2
    sampler: str = "tpe"
    top_n: int = 5
    reeval_seeds: int = 4
    reeval_scale: int = 4
    progress: bool = True
    objective: str = "tokens_per_s"
    replay: Replay | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> SchemaError:
            return SchemaError(f"optimize: {name} got {getattr(self, name)!r}, expected {expected}")

        if self.n_trials < 1:
            raise bad("n_trials", "an integer >= 1")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise bad("timeout_s", "a number of seconds > 0")
        if self.seed < 0:
            raise bad("seed", "an integer >= 0")
        if self.cache_memory_bytes is not None and self.cache_memory_bytes < 1:
            raise bad("cache_memory_bytes", "a number of bytes >= 1")
        if not 0 <= self.polish_fraction < 1:
            raise bad("polish_fraction", "a fraction in [0, 1)")
        if self.objective not in OBJECTIVES:
            raise bad("objective", f"one of {', '.join(OBJECTIVES)}")
        if self.sampler not in SAMPLERS:
            raise bad("sampler", f"one of {', '.join(SAMPLERS)}")
        for name in ("top_n", "reeval_seeds", "reeval_scale", "search_tokens"):
            if getattr(self, name) < 1:
                raise bad(name, "an integer >= 1")


def space_for(workload: Workload, settings: Settings) -> SearchSpace:
    return SearchSpace(
        batch_size=workload.batch_size,
        temperature=workload.temperature,
        k_max=settings.k_max,
        m_max=settings.m_max,
        fallbacks=settings.fallbacks,
        families=settings.families,
        miss_families=settings.miss_families,
    )


def search_workload(workload: Workload, settings: Settings) -> Workload:
    """The workload each trial simulates: the user's, with whole batches of prompts added until
    it generates at least ``search_tokens`` (a single short batch decides too few cache hits
    to tell good fan-outs from lucky ones)."""
    b = workload.batch_size
    per_batch = b * sum(workload.output_len_tokens) / 2
    batches = max(1, math.ceil(settings.search_tokens / per_batch))
    return dataclasses.replace(workload, num_prompts=max(workload.total_prompts, batches * b))


def reeval_workload(workload: Workload, settings: Settings) -> Workload:
    """The re-evaluation workload: the search's sequences, ``reeval_scale`` times as many."""
    search = search_workload(workload, settings)
    return dataclasses.replace(search, num_prompts=search.total_prompts * settings.reeval_scale)
