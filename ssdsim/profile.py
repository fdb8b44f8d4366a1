"""Profile: the cost and chance models of one model pair on one hardware setup.

A Profile holds parameters only; the math that uses them lives in ``ssdsim.latency`` and
``ssdsim.chance`` (pure functions). Presets ship in ``ssdsim/presets/*.json``; calibration
(``ssdsim.calibrate``) writes new ones. Pure standard library; imports only ``ssdsim._schema``.

Latency of one forward pass of B sequences, n new tokens each, over a context of c tokens::

    t(B, n, c) = fixed_s + max(weight_s + kv_s * B * c,  compute_s * B * n)
                 + token_s * B * n + attn_s * B * n * c

The ``max`` is a GPU roofline (flat while memory-bound, then linear in tokens); a CPU is
``fixed_s + token_s * B * n`` (+ ``attn_s`` for long contexts). A message across the link costs
``fixed_s + per_byte_s * bytes``.

Chance: conditional acceptance per draft position (``alpha[i]`` = P(token i+1 accepted | the
first i were); the last entry repeats), separately for draft proposals after a cache hit, draft
proposals on a missed row (jit), and the fast fallback speculator. Coverage: the chance that the
bonus token is among the draft's top-F candidates, ``1 - c(F) = beta * F^-r`` per position, or
measured tables ``c(F), F = 1..len``. The effect of temperature T and of the Saguaro rescale C is
a documented parametric model (``TemperatureModel``) until calibration supplies measured points
(``ChancePoint``) for the (T, C) of interest.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssdsim._schema import (
    SchemaError,
    as_tuple,
    check_float,
    check_int,
    check_prob_rows,
    check_probs,
    check_schema_version,
    fail,
    from_file,
    strict_kwargs,
    to_jsonable,
    write_json,
)

PROFILE_SCHEMA_VERSION = 1
# ChancePoint, ChanceAt: acceptance tables of the run model
RUN_ALPHA_FIELDS = ("run_alpha_sd", "run_alpha_hit", "run_alpha_jit", "run_alpha_rank")
FAST_CONTEXTS = (
    "first",
    "full",
    "part",
    "draft",
    "nomatch",
)  # a fast row's row before (ChancePoint)
FAST_TABLE_FIELDS = ("alpha_fast_rank", *(f"alpha_fast_{c}" for c in FAST_CONTEXTS))


def _nonneg(owner: str, obj: Any, names: tuple[str, ...]) -> None:
    for n in names:
        check_float(owner, n, getattr(obj, n), 0.0)


def _axis(owner: str, name: str, values: Any) -> tuple[int, ...]:
    values = as_tuple(values)
    if not isinstance(values, tuple) or not values:
        raise fail(owner, name, values, "a non-empty list of increasing integers >= 1")
    for i, v in enumerate(values):
        check_int(owner, f"{name}[{i}]", v, 1)
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise fail(owner, name, list(values), "a strictly increasing list of integers >= 1")
    return values


@dataclass(frozen=True)
class LatencyGrid:
    """Measured forward seconds on a grid: ``seconds[i][j][l]`` for batch[i], tokens[j], context[l].

    tokens: new tokens per sequence in the forward; context: tokens per sequence it attends to
    (the new ones included). ``ssdsim.latency.forward_s`` interpolates it multilinearly inside its
    range and scales the formula by the nearest edge's measurement outside it.
    """

    batch: tuple[int, ...]
    tokens: tuple[int, ...]
    context: tuple[int, ...]
    seconds: tuple[tuple[tuple[float, ...], ...], ...]

    def __post_init__(self) -> None:
        o = "LatencyGrid"
        for n in ("batch", "tokens", "context"):
            object.__setattr__(self, n, _axis(o, n, getattr(self, n)))
        shape = (len(self.batch), len(self.tokens), len(self.context))
        sec = as_tuple(self.seconds)
        ok = isinstance(sec, tuple) and len(sec) == shape[0]
        ok = ok and all(isinstance(r, tuple) and len(r) == shape[1] for r in sec)
        ok = ok and all(isinstance(c, tuple) and len(c) == shape[2] for r in sec for c in r)
        if not ok:
            raise fail(
                o, "seconds", "...", f"nested lists of shape {list(shape)} (batch, tokens, context)"
            )
        for i, r in enumerate(sec):
            for j, c in enumerate(r):
                for m, v in enumerate(c):
                    check_float(o, f"seconds[{i}][{j}][{m}]", v, 0.0, low_open=True)
        object.__setattr__(
            self, "seconds", tuple(tuple(tuple(float(v) for v in c) for c in r) for r in sec)
        )

    @classmethod
    def from_dict(cls, data: Any, owner: str = "LatencyGrid") -> LatencyGrid:
        return cls(**strict_kwargs(cls, data, owner))


@dataclass(frozen=True)
class ForwardLatency:
    """Seconds for one forward pass; see the module docstring for the formula.

    grid: optional measured seconds (``LatencyGrid``) that take precedence over the formula
    inside their range (the formula gives the shape outside it).
    """

    fixed_s: float = 0.0
    weight_s: float = 0.0
    kv_s: float = 0.0
    compute_s: float = 0.0
    token_s: float = 0.0
    attn_s: float = 0.0
    grid: LatencyGrid | None = None

    def __post_init__(self) -> None:
        _nonneg(
            "ForwardLatency",
            self,
            ("fixed_s", "weight_s", "kv_s", "compute_s", "token_s", "attn_s"),
        )
        if isinstance(self.grid, dict):
            object.__setattr__(
                self, "grid", LatencyGrid.from_dict(self.grid, "ForwardLatency.grid")
            )
        elif self.grid is not None and not isinstance(self.grid, LatencyGrid):
            raise fail("ForwardLatency", "grid", self.grid, "a LatencyGrid object or null")

    @classmethod
    def from_dict(cls, data: Any, owner: str = "ForwardLatency") -> ForwardLatency:
        return cls(**strict_kwargs(cls, data, owner))


@dataclass(frozen=True)
class LinkLatency:
    """Seconds for one message between the target and draft devices: fixed + per byte."""

    fixed_s: float = 0.0
    per_byte_s: float = 0.0

    def __post_init__(self) -> None:
        _nonneg("LinkLatency", self, ("fixed_s", "per_byte_s"))

    @classmethod
    def from_dict(cls, data: Any, owner: str = "LinkLatency") -> LinkLatency:
        return cls(**strict_kwargs(cls, data, owner))


@dataclass(frozen=True)
class Coverage:
    """Chance that the bonus token is among the draft's top-F candidates at its position.

    ``beta_reject[j]`` / ``r``: power law for the token that follows a rejection at position j
    (the speculated token excluded from the candidates); ``beta_bonus`` / ``r_bonus``: for the
    bonus token after all k proposals were accepted. Optional measured tables give c(F) for
    F = 1..len(table) and take precedence over the power law inside their range.
    """

    beta_reject: tuple[float, ...] = (0.3,)
    r: float = 1.0
    beta_bonus: float = 0.3
    r_bonus: float | None = None
    reject_tables: tuple[tuple[float, ...], ...] = ()
    bonus_table: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        o = "Coverage"
        object.__setattr__(self, "beta_reject", check_probs(o, "beta_reject", self.beta_reject))
        check_float(o, "r", self.r, 0.0, low_open=True)
        check_float(o, "beta_bonus", self.beta_bonus, 0.0, 1.0)
        if self.r_bonus is not None:
            check_float(o, "r_bonus", self.r_bonus, 0.0, low_open=True)
        tables = as_tuple(self.reject_tables)
        for j, t in enumerate(tables):
            _check_cdf(o, f"reject_tables[{j}]", t)
        object.__setattr__(self, "reject_tables", tuple(tuple(float(x) for x in t) for t in tables))
        bt = as_tuple(self.bonus_table)
        if bt:
            _check_cdf(o, "bonus_table", bt)
        object.__setattr__(self, "bonus_table", tuple(float(x) for x in bt))

    @classmethod
    def from_dict(cls, data: Any, owner: str = "Coverage") -> Coverage:
        return cls(**strict_kwargs(cls, data, owner))


def _check_cdf(owner: str, name: str, table: Any) -> None:
    check_probs(owner, name, table)
    if any(b < a - 1e-12 for a, b in itertools.pairwise(table)):
        raise fail(
            owner, name, list(table), "a non-decreasing list c(1), c(2), ... of probabilities"
        )


@dataclass(frozen=True)
class TemperatureModel:
    """Documented parametric effect of temperature T and Saguaro rescale C (used until measured).

    Base values are the greedy ones (T = 0, C = 1). With t = min(T, 2) and g = min(T, 1) (the
    rescale acts only when sampling, fully from T = 1; at T = 0 C has no effect):
        alpha_i(T, C)     = alpha_i * (1 - alpha_temp_slope * t) * (1 - alpha_rescale_slope * (1 - C) * g)
        alpha_fast_i(T)   = alpha_fast_i * (1 - alpha_temp_slope * t)      (it does not sample from q')
        beta_reject(T, C) = min(1, beta_reject * (1 + beta_temp_slope * t) * C ** (beta_rescale_exponent * g))
        beta_bonus(T)     = min(1, beta_bonus * (1 + beta_temp_slope * t))
    Measured coverage tables move the same way: 1 - c(F) is multiplied by the beta factor.
    C < 1 moves residual mass onto the draft's top candidates (coverage up) at the price of a
    worse proposal (acceptance down); the bonus after full acceptance comes from p and ignores C.
    ``ssdsim.chance.chance_at`` applies it, relative to the nearest measured ChancePoint if any.
    """

    alpha_temp_slope: float = 0.1
    beta_temp_slope: float = 1.0
    alpha_rescale_slope: float = 0.25
    beta_rescale_exponent: float = 1.0

    def __post_init__(self) -> None:
        o = "TemperatureModel"
        check_float(o, "alpha_temp_slope", self.alpha_temp_slope, 0.0, 0.5)
        check_float(o, "beta_temp_slope", self.beta_temp_slope, 0.0)
        check_float(o, "alpha_rescale_slope", self.alpha_rescale_slope, 0.0, 1.0)
        check_float(o, "beta_rescale_exponent", self.beta_rescale_exponent, 0.0)

    @classmethod
    def from_dict(cls, data: Any, owner: str = "TemperatureModel") -> TemperatureModel:
        return cls(**strict_kwargs(cls, data, owner))


@dataclass(frozen=True)
class ChancePoint:
    """Measured acceptance and coverage at one (temperature, rescale); overrides the parametric model.

    seq_spread: how acceptance differs between sequences (prompts): per measured sequence a
    multiplier r on its rejection chances, P(reject at j) = min(1, (1 - alpha[j]) r); empty:
    every sequence alike. The simulator gives each sequence one of them, for the draft's
    proposals (hits, jit misses).
    seq_spread_fast: the same for the fast speculator's proposals (against ``alpha_fast``): how
    much a sequence repeats itself is not how well the draft predicts it; empty: every sequence
    alike (fast rows then follow ``alpha_fast`` pooled).
    coverage_fast: measured c_j(F) on rows the fast speculator proposed, by accepted length j
    (``reject_tables[j]``, whether its proposals ran out or one was rejected); None: derived
    from the draft's coverage (``ssdsim.chance.coverage_for``).
    run_alpha_sd / run_alpha_hit / run_alpha_jit: acceptance by run length, for SD proposals,
    SSD cache hits and jit proposals on missed rows: ``run_alpha_*[L]`` = P(the next draft token
    is accepted | the L tokens before it were draft tokens the target accepted, the token before
    those was not), the last entry repeating. A run goes on through a bonus token of rank 1 (the
    draft's own top choice) after a fully accepted step, and ends at a rejection. Unlike
    ``alpha`` (by position within a step, pooled over the k of the traces) it does not depend on
    k, so SD at k = 8 is not predicted from the steps of k = 2. Empty: not measured (the
    simulator then uses ``alpha`` by position).
    run_alpha_rank: SSD only, the first draft proposal of a step that starts a run (run 0) after
    a draft row whose bonus had rank r among the draft's candidates, by bucket of r (1, 2-3,
    4-7, 8-15, ...: ``ssdsim.chance.rank_bucket``): P(accepted), hit or jit alike, the last entry
    standing for every deeper rank (and ranks beyond the recorded depth). A hit served from the
    tree's rank-r branch follows the draft where it was r places off, and the deeper the rank
    the less the draft's next guess is worth (loop 7's validation traces at T = 0: 0.85 after
    rank 1, 0.74 after 2-3, 0.56 after 4-7, 0.38 after 8-15; at T = 1: 0.79 to 0.66): wide trees
    hit more often than narrow ones, but on worse rows. Empty: the kind's ``run_alpha_*[0]``
    for every rank.
    alpha_fast_rank: the same for the fast speculator's rows after a draft row (its first
    proposal, a missing one counting as rejected; later positions keep ``alpha_fast_draft``,
    else ``alpha_fast``): a miss at a deep rank is where
    the target departs most from the draft, often to repeat its context, which the n-gram
    speculator copies (loop 7's validation traces at T = 0: 0.48 after ranks 2-3, 0.71 after
    4-7, 0.93 after 8-15). Empty: ``alpha_fast`` for every rank.
    coverage_spread: how sequences differ in coverage: per measured sequence a multiplier m on
    the odds that the bonus falls outside the draft's top F, (1 - c) / c, for every c_j(F)
    (``coverage``, ``coverage_fast``) alike. At T = 0 a sequence caught in a loop misses the
    same way step after step (loop 13's first calibration pass, SSD k=4 jit at B=1: per
    sequence hit rates spread by 0.27, by 0.08 simulated with one coverage for all; after a
    jit row the next request hit 44% of the time after a full acceptance, 92% simulated). The
    simulator gives each sequence one of them, apart from its run spread. Empty: every
    sequence alike.
    alpha_fast_first / _full / _part / _draft / _nomatch: acceptance by position of the fast
    speculator's rows by the row before them (``FAST_CONTEXTS``): none (the sequence's first
    step, right after its prompt), a fast row whose k proposals were all accepted, a fast row
    with a rejection, a draft row (hit or jit) whose bonus the next tree missed, or a fast row
    that found no n-gram match and proposed nothing (such rows count as rejected at once). An n-gram
    speculator that has just copied a whole row keeps copying, one with only the prompt to
    match has little to copy, and after the draft's miss the target often turns to repeat its
    context (loop 13's first calibration pass at B=1, T=0, k=8: 5.5 tokens accepted after a
    full fast row, 0.6 on the first row, 4.1 after a partial one; k=8 uniform: 6.6 after a
    draft row). After a draft row the first proposal follows ``alpha_fast_rank`` where the bonus
    rank is known (then this table's later positions). Empty: ``alpha_fast_rank`` or
    ``alpha_fast`` in that context.
    fast_nomatch: per context of ``FAST_CONTEXTS`` (in its order), the share of its fast rows
    with no accepted proposal that found no n-gram match at all. Such rows come in runs while
    the text is new (loop 18's calibration, SSD k=8 sparse fast at B=1, T=0: 69% of the rows
    after one found no match either, 1% after a full fast row); a policy whose rows are nearly
    all the n-gram speculator's spends far more of them there (the optimizer's one-branch pick
    on the same prompts: 28% of its rows after a no-match row, 5% in that calibration run).
    Empty: never (the rows before them count as ``part``).
    alpha_fast_draft_rank: the fast speculator's rows after a draft row, acceptance by position,
    one row per bucket of that draft row's bonus rank (``run_alpha_rank``'s buckets, the last
    row standing for every deeper rank). Where set, it replaces ``alpha_fast_rank`` with this
    table's later positions: the deeper the draft missed, the more often the target is
    repeating its context and the n-gram speculator copies whole rows (loop 16's calibration
    traces at B=1, T=0, k=8: all 8 proposals accepted on 58% of the rows after a rank 4-7
    bonus, 22% after rank 1; the first rate by rank with the pooled later positions gives 33%
    and 23%). Empty: not measured.
    run_spread: how sequences differ under the run model: per measured sequence a multiplier r
    on its odds of rejection, fitted jointly with the run tables, which then hold a typical
    sequence's rates (r = 1): where the table says a, a sequence with multiplier r accepts
    with a / (a + (1 - a) r), in the run tables and ``run_alpha_rank`` alike. The simulator
    gives each sequence one of them. Empty: every sequence follows the run tables as they are
    (``seq_spread`` applies only without run tables).
    """

    temperature: float
    rescale: float
    alpha: tuple[float, ...]
    alpha_after_miss: tuple[float, ...] | None = None
    alpha_fast: tuple[float, ...] | None = None
    coverage: Coverage | None = None
    samples: int = 0
    seq_spread: tuple[float, ...] = ()
    coverage_fast: Coverage | None = None
    seq_spread_fast: tuple[float, ...] = ()
    run_alpha_sd: tuple[float, ...] = ()
    run_alpha_hit: tuple[float, ...] = ()
    run_alpha_jit: tuple[float, ...] = ()
    run_alpha_rank: tuple[float, ...] = ()
    alpha_fast_rank: tuple[float, ...] = ()
    run_spread: tuple[float, ...] = ()
    alpha_fast_first: tuple[float, ...] = ()
    alpha_fast_full: tuple[float, ...] = ()
    alpha_fast_part: tuple[float, ...] = ()
    alpha_fast_draft: tuple[float, ...] = ()
    coverage_spread: tuple[float, ...] = ()
    alpha_fast_draft_rank: tuple[tuple[float, ...], ...] = ()
    alpha_fast_nomatch: tuple[float, ...] = ()
    fast_nomatch: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        o = "ChancePoint"
        object.__setattr__(
            self,
            "alpha_fast_draft_rank",
            check_prob_rows(o, "alpha_fast_draft_rank", self.alpha_fast_draft_rank),
        )
        for n in (*RUN_ALPHA_FIELDS, *FAST_TABLE_FIELDS, "fast_nomatch"):
            if getattr(self, n):
                object.__setattr__(self, n, check_probs(o, n, getattr(self, n)))
            else:
                object.__setattr__(self, n, ())
        if self.fast_nomatch and len(self.fast_nomatch) != len(FAST_CONTEXTS):
            raise fail(
                o, "fast_nomatch", self.fast_nomatch, f"one share per context {FAST_CONTEXTS}"
            )
        check_float(o, "temperature", self.temperature, 0.0)
        check_float(o, "rescale", self.rescale, 0.0, 1.0, low_open=True)
        object.__setattr__(self, "alpha", check_probs(o, "alpha", self.alpha))
        for n in ("alpha_after_miss", "alpha_fast"):
            if getattr(self, n) is not None:
                object.__setattr__(self, n, check_probs(o, n, getattr(self, n)))
        if isinstance(self.coverage, dict):
            object.__setattr__(self, "coverage", Coverage.from_dict(self.coverage, f"{o}.coverage"))
        if isinstance(self.coverage_fast, dict):
            object.__setattr__(
                self, "coverage_fast", Coverage.from_dict(self.coverage_fast, f"{o}.coverage_fast")
            )
        check_int(o, "samples", self.samples, 0)
        for name in ("seq_spread", "seq_spread_fast", "run_spread", "coverage_spread"):
            spread = getattr(self, name)
            if not isinstance(spread, (list, tuple)):
                raise fail(o, name, spread, "a list of numbers > 0")
            for i, v in enumerate(spread):
                check_float(o, f"{name}[{i}]", v, 0.0, low_open=True)
            object.__setattr__(self, name, tuple(float(v) for v in spread))

    @classmethod
    def from_dict(cls, data: Any, owner: str = "ChancePoint") -> ChancePoint:
        return cls(**strict_kwargs(cls, data, owner))


@dataclass(frozen=True)
class Chance:
    """Acceptance and coverage of one model pair (greedy base values plus measured points)."""

    alpha: tuple[float, ...] = (0.8,)
    alpha_after_miss: tuple[float, ...] | None = None
    alpha_fast: tuple[float, ...] = (0.3,)
    coverage: Coverage = field(default_factory=Coverage)
    temperature_model: TemperatureModel = field(default_factory=TemperatureModel)
    points: tuple[ChancePoint, ...] = ()

    def __post_init__(self) -> None:
        o = "Chance"
        object.__setattr__(self, "alpha", check_probs(o, "alpha", self.alpha))
        if self.alpha_after_miss is not None:
            object.__setattr__(
                self, "alpha_after_miss", check_probs(o, "alpha_after_miss", self.alpha_after_miss)
            )
        object.__setattr__(self, "alpha_fast", check_probs(o, "alpha_fast", self.alpha_fast))
        if isinstance(self.coverage, dict):
            object.__setattr__(self, "coverage", Coverage.from_dict(self.coverage, f"{o}.coverage"))
        if isinstance(self.temperature_model, dict):
            object.__setattr__(
                self,
                "temperature_model",
                TemperatureModel.from_dict(self.temperature_model, f"{o}.temperature_model"),
            )
        pts = tuple(
            ChancePoint.from_dict(p, f"{o}.points[{i}]") if isinstance(p, dict) else p
            for i, p in enumerate(as_tuple(self.points) or ())
        )
        object.__setattr__(self, "points", pts)

    @classmethod
    def from_dict(cls, data: Any, owner: str = "Chance") -> Chance:
        return cls(**strict_kwargs(cls, data, owner))


def _mode_overheads(owner: str, value: Any) -> dict[str, tuple[float, float]]:
    if not isinstance(value, dict):
        raise fail(owner, "mode_overheads", value, 'an object like {"ar": [fixed_s, per_seq_s]}')
    out = {}
    for mode, pair in value.items():
        if mode not in ("ar", "sd", "ssd"):
            raise fail(owner, "mode_overheads", mode, "keys among 'ar', 'sd', 'ssd'")
        pair = as_tuple(pair)
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise fail(owner, f"mode_overheads.{mode}", pair, "a pair [fixed_s, per_seq_s]")
        out[mode] = (
            check_float(owner, f"mode_overheads.{mode}[0]", pair[0], 0.0),
            check_float(owner, f"mode_overheads.{mode}[1]", pair[1], 0.0),
        )
    return out


def _by_batch(owner: str, name: str, table: Any) -> dict[int, float]:
    """A table {batch size: non-negative float} (JSON keys are strings)."""
    if not isinstance(table, dict):
        raise fail(owner, name, table, 'an object {"B": value}')
    rows = {}
    for b, v in table.items():
        try:
            batch = int(b)
        except (TypeError, ValueError):
            batch = 0
        if batch < 1 or str(batch) != str(b).strip():
            raise fail(owner, name, b, "batch sizes (integers >= 1) as keys")
        rows[batch] = check_float(owner, f"{name}.{b}", v, 0.0)
    return dict(sorted(rows.items()))


def _host_by_batch(owner: str, value: Any) -> dict[str, dict[int, float]]:
    if not isinstance(value, dict):
        raise fail(owner, "host_by_batch", value, 'an object like {"ssd": {"1": seconds}}')
    out: dict[str, dict[int, float]] = {}
    for mode, table in value.items():
        if mode not in ("ar", "sd", "ssd"):
            raise fail(owner, "host_by_batch", mode, "keys among 'ar', 'sd', 'ssd'")
        if not isinstance(table, dict) or not table:
            raise fail(owner, f"host_by_batch.{mode}", table, 'a non-empty object {"B": seconds}')
        out[mode] = _by_batch(owner, f"host_by_batch.{mode}", table)
    return out


@dataclass(frozen=True)
class Profile:
    """Cost and chance models for one model pair on one hardware setup.

    Fields:
        name, description: identification; ``provenance`` records device, models, dtype,
            software versions and source traces.
        target, draft: forward latency of each model on its own device.
        draft_tree: latency of one SSD tree-decode step (B sequences x M branches of one token
            each, context = the trunk positions a branch may read); None: the draft's forward
            with M tokens per sequence (``ssdsim.latency.prespec_s``).
        link: message latency between the devices (SSD only; SD runs on one device).
        step_overhead_s, seq_overhead_s: host work on the target's critical path per decode
            step (sampling, verification, bookkeeping): fixed + per sequence.
        mode_overheads: optional per-mode replacements of those two, ``{"ar" | "sd" | "ssd":
            [fixed_s, per_seq_s]}`` (an engine's host work differs by mode).
        host_by_batch: optional per-mode host work per step measured at given batch sizes,
            ``{"ssd": {"1": s, "4": s, "8": s}}``; replaces the mode's line: linear between
            the measured sizes, the nearest one's beyond them (SSD's host work on this CPU is
            not a line in B: 3.0, 1.7 and 7.7 ms at B = 1, 4, 8 in loop 7's calibration).
        fast_s, fast_seq_s: latency of the fast fallback speculator per step: fixed + per sequence.
        chance: acceptance and coverage.
        vocab_size, dist_bytes: vocabulary size and bytes per probability entry (messages and
            cache memory); draft_kv_bytes_per_token: draft KV bytes per cached token.
        cache_memory_bytes: the draft device's memory for the speculation cache (optimizer limit).
        max_context_tokens: longest context the models accept.
        static_batch_rows: the engine keeps computing a static batch's finished rows until the
            whole batch is done (as the project's executor does): forwards and messages are
            costed for the batch's rows, not only its live ones (jit still decodes live misses).
        doorbell: the draft stops its SSD pre-speculation tree at the first tree-step boundary
            after the next request was sent (at least one step, as the project's executor
            does): the target never waits for a whole tree, and a hit then carries only the
            depth the tree reached (``ssdsim.sim.costs``, ``ssdsim.sim.outcomes``).
        draft_sampling_scale: multiplier on the draft's chain forwards (SD drafting, SSD jit)
            when it samples (T > 0): drawing from the distribution costs more than an argmax.
        tree_sample_row_s: seconds per branch row per SSD tree step added when the tree samples
            (T > 0; Saguaro sampling of each of the B*M rows).
        ssd_dist_row_s: host work on the target's critical path per draft distribution an SSD
            step receives when sampling (T > 0: k per row proposed by the draft, i.e. hits and
            jit's misses; unpacking them and verifying against them), beyond
            ``mode_overheads["ssd"]``.
        sd_draft_scales: SD's drafting only: multiplier on the draft's chain forwards per batch
            size, ``{"1": x, "4": x}`` (linear in B between them, the nearest beyond; empty: 1).
            ``draft`` keeps the profile's measured shape for SSD's draft worker, whose costs
            have their own scales (``jit_scale``, the tree's) fitted on SSD traces.
        sd_draft_fixed_s: seconds SD's drafting takes per step beyond its k chain forwards: its
            first forward runs right after the target's, whose weights have pushed the draft's
            out of the CPU's caches (``ssdsim.latency.sd_draft_s``; SSD's draft keeps its own core).
        verify_sample_row_s: host work on the target's critical path per verified token row
            (B x tokens the target's forward scores: 1 for AR, k+1 for SD) when sampling
            (T > 0: probabilities, random draws and the accept/residual rule instead of an
            argmax), beyond ``mode_overheads``; SSD pays it too (same verification kernel).
        verify_sample_step_s: host work of sampling per decode step (T > 0), whatever the rows:
            the sampling path's fixed cost (its tensors and random draws start from cold
            caches after the forward; loop 17: AR at B=1 paid ~0.1-0.2 ms a step at T=1, 8 us
            as per-row cost alone). Charged like ``verify_sample_row_s``.
        jit_scale: multiplier on the draft's chain forwards when SSD's draft worker decodes
            missed rows (jit): the worker's forwards, run right after its tree on another core,
            can cost more than SD's drafting in the target's process.
        jit_fixed_s: seconds a jit decode takes beyond its scaled chain forwards, once per step
            with missed rows (picking the rows, the worker's bookkeeping): fitted with
            ``jit_scale`` over jit traces at several k (loop 14: 0.78 ms for k = 2 against
            2.11 ms for k = 8 at B = 1, not a quarter of it).
        jit_row_s: seconds a jit decode takes per missed row beyond its scaled chain forwards
            (the draft's forward grid, timed alone, barely grows from 1 to 4 rows; loop 17's
            jit took 1.2, 1.7, 2.0 and 2.9 ms for 1-4 missed rows at k = 4, B = 4, T = 0).
        jit_sampling_scale: multiplier on the whole jit decode when it samples (T > 0), fitted
            on SSD jit traces at T > 0; 0: unset, ``draft_sampling_scale`` on its chain forwards
            (SD's drafting) as before (loop 17: jit at T = 1 took 1.13-1.2x its greedy time at
            B = 1 and 4, against SD's 1.07).
        jit_answer_s: seconds the target's wait for a jit answer takes beyond the response
            message, per batch size ``{"1": s, "4": s}`` (linear in B between them, the
            nearest beyond; empty: 0): on steps with missed rows under jit, the link on the
            critical path runs longer than on steps the target serves from the shared cache
            (loop 14: 0.28 against 0.15 ms at B = 1, 0.69 against 0.21 ms at B = 4, means).
        prespec_glue_s: seconds SSD's glue forward (the k+1 verified tokens, the first forward
            of a pre-speculation) takes beyond the draft's forward at that shape, per batch
            size ``{"1": s, "4": s}`` (linear in B between them, the nearest beyond; empty: 0):
            on this CPU the worker's glue took 0.8-1.6 ms more than the same forward timed
            alone at every k and B (loop 21: 2.6 against 1.4 ms at B = 1, k = 8), an offset,
            not a ratio. Fitted apart from the tree's scale, which then holds the tree's steps
            alone (on loop 21's runs the doorbell's depth came out the same either way).
    """

    name: str
    target: ForwardLatency
    draft: ForwardLatency
    link: LinkLatency = field(default_factory=LinkLatency)
    chance: Chance = field(default_factory=Chance)
    step_overhead_s: float = 0.0
    seq_overhead_s: float = 0.0
    fast_s: float = 0.0
    fast_seq_s: float = 0.0
    vocab_size: int = 32000
    dist_bytes: int = 4
    draft_kv_bytes_per_token: int = 0
    cache_memory_bytes: int = 8 * 2**30
    max_context_tokens: int = 8192
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: int = PROFILE_SCHEMA_VERSION
    draft_tree: ForwardLatency | None = None
    static_batch_rows: bool = False
    mode_overheads: dict[str, tuple[float, float]] = field(default_factory=dict)
    doorbell: bool = False
    draft_sampling_scale: float = 1.0
    jit_scale: float = 1.0
    tree_sample_row_s: float = 0.0
    ssd_dist_row_s: float = 0.0
    verify_sample_row_s: float = 0.0
    verify_sample_step_s: float = 0.0
    sd_draft_fixed_s: float = 0.0
    jit_fixed_s: float = 0.0
    jit_row_s: float = 0.0
    jit_sampling_scale: float = 0.0
    jit_answer_s: dict[int, float] = field(default_factory=dict)
    sd_draft_scales: dict[int, float] = field(default_factory=dict)
    host_by_batch: dict[str, dict[int, float]] = field(default_factory=dict)
    prespec_glue_s: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        o = "Profile"
        check_schema_version(o, self.schema_version, PROFILE_SCHEMA_VERSION)
        if not isinstance(self.name, str) or not self.name:
            raise fail(o, "name", self.name, "a non-empty string")
        for n, cls in (
            ("target", ForwardLatency),
            ("draft", ForwardLatency),
            ("link", LinkLatency),
            ("chance", Chance),
        ):
            v = getattr(self, n)
            if isinstance(v, dict):
                object.__setattr__(self, n, cls.from_dict(v, f"{o}.{n}"))
            elif not isinstance(v, cls):
                raise fail(o, n, v, f"a {cls.__name__} object")
        if isinstance(self.draft_tree, dict):
            object.__setattr__(
                self, "draft_tree", ForwardLatency.from_dict(self.draft_tree, f"{o}.draft_tree")
            )
        elif self.draft_tree is not None and not isinstance(self.draft_tree, ForwardLatency):
            raise fail(o, "draft_tree", self.draft_tree, "a ForwardLatency object or null")
        _nonneg(o, self, ("step_overhead_s", "seq_overhead_s", "fast_s", "fast_seq_s"))
        check_int(o, "vocab_size", self.vocab_size, 2)
        check_int(o, "dist_bytes", self.dist_bytes, 1)
        check_int(o, "draft_kv_bytes_per_token", self.draft_kv_bytes_per_token, 0)
        check_int(o, "cache_memory_bytes", self.cache_memory_bytes, 1)
        check_int(o, "max_context_tokens", self.max_context_tokens, 2)
        if not isinstance(self.provenance, dict):
            raise fail(o, "provenance", self.provenance, "a JSON object")
        if not isinstance(self.static_batch_rows, bool):
            raise fail(o, "static_batch_rows", self.static_batch_rows, "true or false")
        if not isinstance(self.doorbell, bool):
            raise fail(o, "doorbell", self.doorbell, "true or false")
        check_float(o, "draft_sampling_scale", self.draft_sampling_scale, 0.0, low_open=True)
        check_float(o, "jit_scale", self.jit_scale, 0.0, low_open=True)
        check_float(o, "tree_sample_row_s", self.tree_sample_row_s, 0.0)
        check_float(o, "ssd_dist_row_s", self.ssd_dist_row_s, 0.0)
        check_float(o, "verify_sample_row_s", self.verify_sample_row_s, 0.0)
        check_float(o, "verify_sample_step_s", self.verify_sample_step_s, 0.0)
        check_float(o, "sd_draft_fixed_s", self.sd_draft_fixed_s, 0.0)
        check_float(o, "jit_fixed_s", self.jit_fixed_s, 0.0)
        check_float(o, "jit_row_s", self.jit_row_s, 0.0)
        check_float(o, "jit_sampling_scale", self.jit_sampling_scale, 0.0)
        object.__setattr__(self, "mode_overheads", _mode_overheads(o, self.mode_overheads))
        object.__setattr__(self, "host_by_batch", _host_by_batch(o, self.host_by_batch))
        object.__setattr__(
            self, "sd_draft_scales", _by_batch(o, "sd_draft_scales", self.sd_draft_scales)
        )
        object.__setattr__(self, "jit_answer_s", _by_batch(o, "jit_answer_s", self.jit_answer_s))
        object.__setattr__(
            self, "prespec_glue_s", _by_batch(o, "prespec_glue_s", self.prespec_glue_s)
        )

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def from_dict(cls, data: Any) -> Profile:
        return cls(**strict_kwargs(cls, data))

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        return from_file(cls, path)

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())


HOST_STEP_FIELDS = ("mode", "batch", "k", "context", "step_s", "draft_s", "verify_s")


def _host_step(owner: str, data: Any) -> dict[str, Any]:
    """One measured decode step: mode (ar|sd), live rows, k, mean context and its seconds."""
    if not isinstance(data, dict) or set(data) != set(HOST_STEP_FIELDS):
        raise fail(
            owner, "host_steps[]", data, f"an object with exactly {', '.join(HOST_STEP_FIELDS)}"
        )
    if data["mode"] not in ("ar", "sd"):
        raise fail(owner, "host_steps[].mode", data["mode"], "'ar' or 'sd'")
    check_int(owner, "host_steps[].batch", data["batch"], 1)
    check_int(owner, "host_steps[].k", data["k"], 0)
    for n in ("context", "step_s", "draft_s", "verify_s"):
        check_float(owner, f"host_steps[].{n}", data[n], 0.0)
    return dict(data)


@dataclass(frozen=True)
class LatencyMeasurements:
    """The latency part of a Profile as measured by ``python -m executor.profile``, with raw samples.

    target, draft: forward latency (measured grids; ``ssdsim.calibrate`` fits the formula).
    draft_tree: SSD tree-decode steps (grid axes: batch B, branches per sequence M, context).
    link: fitted message latency; link_samples: [bytes, one-way seconds] medians per size.
    host_steps: measured AR and SD decode steps (``HOST_STEP_FIELDS``), from which calibration
    takes the host work per step beside the forwards. provenance: device, models, versions,
    settings and machine load.
    """

    target: ForwardLatency
    draft: ForwardLatency
    draft_tree: ForwardLatency | None = None
    link: LinkLatency = field(default_factory=LinkLatency)
    link_samples: tuple[tuple[float, float], ...] = ()
    host_steps: tuple[dict[str, Any], ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: int = PROFILE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        o = "LatencyMeasurements"
        check_schema_version(o, self.schema_version, PROFILE_SCHEMA_VERSION)
        for n, cls, optional in (
            ("target", ForwardLatency, False),
            ("draft", ForwardLatency, False),
            ("draft_tree", ForwardLatency, True),
            ("link", LinkLatency, False),
        ):
            v = getattr(self, n)
            if isinstance(v, dict):
                object.__setattr__(self, n, cls.from_dict(v, f"{o}.{n}"))
            elif not (isinstance(v, cls) or (optional and v is None)):
                raise fail(o, n, v, f"a {cls.__name__} object")
        samples = as_tuple(self.link_samples)
        for i, pair in enumerate(samples):
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise fail(o, f"link_samples[{i}]", pair, "a pair [bytes, seconds]")
            check_float(o, f"link_samples[{i}][0]", pair[0], 0.0)
            check_float(o, f"link_samples[{i}][1]", pair[1], 0.0)
        object.__setattr__(self, "link_samples", samples)
        steps = tuple(_host_step(o, s) for s in (self.host_steps or ()))
        object.__setattr__(self, "host_steps", steps)
        if not isinstance(self.provenance, dict):
            raise fail(o, "provenance", self.provenance, "a JSON object")

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def from_dict(cls, data: Any) -> LatencyMeasurements:
        return cls(**strict_kwargs(cls, data))

    @classmethod
    def load(cls, path: str | Path) -> LatencyMeasurements:
        return from_file(cls, path)

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())


PRESETS_DIR = Path(__file__).with_name("presets")


def list_presets() -> list[str]:
    """Names of the profiles that ship with the package."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A preset by name (see ``list_presets``) or a profile JSON file."""
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists() or "/" in str(name_or_path):
        return Profile.load(p)
    preset = PRESETS_DIR / f"{name_or_path}.json"
    if not preset.is_file():
        raise SchemaError(
            f"profile {str(name_or_path)!r} is neither a file nor a preset; presets: {', '.join(list_presets()) or 'none'}"
        )
    return Profile.load(preset)
