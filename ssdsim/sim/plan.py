"""The run plan: a simulation's inputs checked and resolved once (chance, lengths, streams).

Randomness: one numpy Generator per stochastic component (``STREAMS``), derived from the run's
seed with ``SeedSequence(seed, spawn_key=(component, batch))``. Every batch has its own
generator per component, so changing one batch's policy-dependent step count never shifts
another batch's draws (common random numbers across policies).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ssdsim._schema import SchemaError, fail
from ssdsim.chance import (
    ChanceAt,
    accept_cdf,
    chance_at,
    coverage_for,
    hit_thresholds,
    odds_alpha,
    odds_coverage,
    rank_bucket_edges,
    run_accept_cdfs,
    spread_alpha,
)
from ssdsim.policy import Policy
from ssdsim.profile import FAST_CONTEXTS, RUN_ALPHA_FIELDS, Profile
from ssdsim.replay import Replay
from ssdsim.workload import Workload, prompt_lengths

STREAMS = {
    "lengths": 0,
    "accept": 1,
    "rank": 2,
    "spread": 3,
    "run_spread": 4,
    "phase": 5,
    "coverage_spread": 6,
}


def stream(seed: int, component: str, *key: int) -> np.random.Generator:
    """The generator of one stochastic component (and batch) of a run."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAMS[component], *key)))


@dataclass(frozen=True)
class Plan:
    """Everything a run needs, resolved: chance at (T, C), per-sequence lengths, samplers' tables.

    miss_kind: the proposer of missed SSD rows (``jit`` or ``fast``; ``hit`` for SD/AR, unused).
    cdf_hit/cdf_miss: P(A <= j) for proposals after a hit (and SD) and on a missed row.
    cdf_hit_seq/cdf_miss_seq: the same per sequence (rows) when the chance has a per-sequence
        spread (``ChancePoint.seq_spread``, ``seq_spread_fast`` for the fast speculator's rows;
        stream ``spread`` deals their values out), else None.
    thr_hit/thr_miss: c_j(F_j) with the after-hit / after-miss fan-out (SSD; empty otherwise).
    thr_hit_cut: c_bonus(F_j): a hit row's every proposal accepted when its tree was cut at
        depth j < k (doorbell; j = k equals thr_hit[k]).
    run_hit/run_miss: (H, k+1) P(A <= j) of a step starting at run length L = 0..H-1
        (``ChanceAt.run_alpha_for``: ``sd`` for SD, ``hit`` and the jit fallback for SSD; a fast
        fallback's rows keep ``cdf_miss``), or None when the chance has no run-length tables.
        The same for every sequence (see ``_run_cdfs``).
    bonus_run: c_bonus(1), the chance that a fully accepted step's bonus is the draft's top
        choice, which carries the run on (run model only).
    run_rank: (R, k+1) P(A <= j) of an SSD draft row (hit or jit) starting a run after a bonus
        in rank bucket b = 0..R-1 (``ChanceAt.run_alpha_rank``: the first proposal's rate, then
        the run table's; deeper buckets use the last), or None (the kinds' run-0 rows serve
        every rank).
    run_seq: per sequence, its draft rows' tables under the run model moved by its multiplier
        (``ChanceAt.run_spread``, dealt out by stream ``run_spread``): (run_hit, run_miss,
        run_rank) as nested lists (None where the shared one is None), or None when the
        chance has no run spread (every sequence uses the shared tables).
    fast_rank: the same for a fast fallback's row (``ChanceAt.alpha_fast_draft_rank`` row by row;
        else ``ChanceAt.alpha_fast_rank``, then
        ``alpha_fast``), or None (``cdf_miss`` per sequence).
    cov_seq: per sequence, its multiplier on the odds of a miss (``ChanceAt.coverage_spread``,
        dealt out by stream ``coverage_spread``; run model only): ``thresholds`` moves the hit
        thresholds, the run's bonus chance and the rank bounds by it; None: none.
    fast_before: per context of a fast fallback's row (``FAST_CONTEXTS``: the row before it),
        its (k+1,) P(A <= j) (``ChanceAt.alpha_fast_first`` ...; run model only); a context
        without a table, and every context when None, uses ``fast_rank``, then ``cdf_miss``
        (after a row with no n-gram match: the ``part`` table first, as before the context).
    fast_nomatch: per context, the chance that a fast row accepting nothing found no n-gram
        match (``ChanceAt.fast_nomatch``); the next fast row then has context ``nomatch``.
        Empty: never.
    rank_bounds/rank_bounds_miss: (k+1, E) c_j at the buckets' last ranks (1, 3, 7, ..) after
        a hit / on a missed row, row j < k after j accepted proposals, row k the bonus after
        all were: the rank-stream uniform v falls in bucket #{edges : v >= c_j(edge)}.
    replay: the workload's greedy texts (``ssdsim.replay``, T = 0 only): accepted lengths and
        hits are read off them instead of sampled; None: sampled from the chance model.
    """

    profile: Profile
    policy: Policy
    workload: Workload
    seed: int
    chance: ChanceAt
    miss_kind: str
    prompt_lens: np.ndarray
    output_lens: np.ndarray
    cdf_hit: np.ndarray
    cdf_miss: np.ndarray
    thr_hit: np.ndarray
    thr_miss: np.ndarray
    with_dists: bool
    thr_hit_cut: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cdf_hit_seq: np.ndarray | None = None
    cdf_miss_seq: np.ndarray | None = None
    run_hit: np.ndarray | None = None
    run_miss: np.ndarray | None = None
    bonus_run: float = 0.0
    run_rank: np.ndarray | None = None
    fast_rank: np.ndarray | None = None
    rank_bounds: np.ndarray | None = None
    rank_bounds_miss: np.ndarray | None = None
    run_seq: tuple[tuple[list | None, ...], ...] | None = None
    fast_before: dict[str, np.ndarray] | None = None
    cov_seq: np.ndarray | None = None
    fast_nomatch: dict[str, float] = field(default_factory=dict)
    replay: Replay | None = None

    _moved: dict[float, tuple] = field(default_factory=dict, repr=False, compare=False)

    def thresholds(self, seq_id: int) -> tuple:
        """(thr_hit, thr_hit_cut, thr_miss, bonus_run, rank_bounds, rank_bounds_miss) of one
        sequence as lists (None where the plan has none), moved by its ``cov_seq``; computed
        once per multiplier (the sampler asks for them every chunk of steps)."""
        m = 1.0 if self.cov_seq is None else float(self.cov_seq[seq_id])
        if m not in self._moved:
            tables = (self.thr_hit, self.thr_hit_cut, self.thr_miss, self.bonus_run)
            tables += (self.rank_bounds, self.rank_bounds_miss)
            self._moved[m] = tuple(
                None if t is None else (odds_coverage(t, m) if m != 1.0 else np.asarray(t)).tolist()
                for t in tables
            )
        return self._moved[m]

    def cdfs(self, seq_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(slots, k+1) P(A <= j) after a hit and on a missed row, per sequence of a batch."""
        if self.cdf_hit_seq is None or self.cdf_miss_seq is None:
            shape = (len(seq_ids), len(self.cdf_hit))
            return np.broadcast_to(self.cdf_hit, shape), np.broadcast_to(self.cdf_miss, shape)
        return self.cdf_hit_seq[seq_ids], self.cdf_miss_seq[seq_ids]

    @property
    def mode(self) -> str:
        return self.policy.mode

    def batches(self) -> list[np.ndarray]:
        """Sequence ids of each static batch, in order."""
        n, b = len(self.output_lens), self.workload.batch_size
        return [np.arange(i, min(i + b, n)) for i in range(0, n, b)]


def _lengths(workload: Workload, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = workload.total_prompts
    rng = stream(seed, "lengths")
    lo, hi = workload.prompt_len_tokens
    drawn = rng.integers(lo, hi + 1, size=n)
    lo, hi = workload.output_len_tokens
    outputs = rng.integers(lo, hi + 1, size=n)
    from_set = prompt_lengths(workload)
    prompts = np.array([from_set[i % len(from_set)] for i in range(n)]) if from_set else drawn
    return prompts.astype(np.int64), outputs.astype(np.int64)


def _check_inputs(profile: object, policy: object, workload: object, seed: object) -> int:
    for name, value, cls in (
        ("profile", profile, Profile),
        ("policy", policy, Policy),
        ("workload", workload, Workload),
    ):
        if not isinstance(value, cls):
            raise SchemaError(
                f"simulate: {name} got {type(value).__name__}, expected a {cls.__name__}"
            )
    seed = workload.seed if seed is None else seed  # type: ignore[attr-defined]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SchemaError(f"simulate: seed got {seed!r}, expected an integer >= 0 or None")
    return int(seed)


def deal_spread(spread: tuple[float, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """n sequences' spread values: a systematic sample of the sorted spread (one random offset,
    then every m/n-th value; each value n/m times when n >= m), in a random order.

    Drawing n of m values at random (n < m) made a prediction on a dozen prompts depend on
    which sequences the seed happened to deal the extreme values to (an n-gram policy's tokens
    per step moved by +-20% between seeds); a systematic sample keeps the spread's mean and
    shape in every seed and leaves only the order to chance."""
    values = np.sort(np.asarray(spread, dtype=float))
    m = len(values)
    idx = np.floor((np.arange(n) + rng.random()) * m / n).astype(int)
    return rng.permutation(values[np.minimum(idx, m - 1)])


def _spreads(
    at: ChanceAt, policy: Policy, miss_kind: str, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Each sequence's rejection multiplier after a hit and on a missed row: each proposer
    kind's spread (``ChanceAt.spread_for``) dealt out in a seeded order (None: no spread)."""
    kinds = ("hit", miss_kind)
    if policy.mode == "ar" or not any(at.spread_for(kind) for kind in kinds):
        return None
    rng = stream(seed, "spread")
    out = []
    for kind in kinds:
        spread = at.spread_for(kind)
        out.append(deal_spread(spread, n, rng) if spread else np.ones(n))
    return out[0], out[1]


def _spread_cdfs(
    at: ChanceAt, policy: Policy, miss_kind: str, rs: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-sequence acceptance CDFs after a hit and on a missed row (None: no spread)."""
    if rs is None:
        return None, None
    k = policy.k
    out = [
        np.stack([accept_cdf(spread_alpha(at.alpha_for(kind), k, r), k) for r in kind_rs])
        for kind, kind_rs in zip(("hit", miss_kind), rs, strict=True)
    ]
    return out[0], out[1]


def _run_cdfs(
    at: ChanceAt, policy: Policy, miss_kind: str
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(H, k+1) acceptance CDFs by starting run length, after a hit (SD: the ``sd`` table)
    and on a jit-missed row; (None, None) when the kinds have no run tables.

    The draft's per-sequence spread is not applied: conditioning on the run already carries
    what made sequences differ. Run tables fitted per kind on loop5's validation traces
    themselves predicted SD at k = 2, 4, 8 at 2.22, 2.76, 3.19 tokens per step without the
    spread and 2.08, 2.50, 2.87 with it; 2.18, 2.76, 3.15 were measured."""
    first = at.run_alpha_for("sd" if policy.mode == "sd" else "hit")
    if policy.mode == "ar" or not first:
        return None, None
    miss = at.run_alpha_for(miss_kind) if policy.mode == "ssd" else ()
    k = policy.k
    return run_accept_cdfs(first, k), (run_accept_cdfs(miss, k) if miss else None)


def _run_seq(
    at: ChanceAt, policy: Policy, miss_kind: str, n: int, seed: int
) -> tuple[tuple[list | None, ...], ...] | None:
    """Each sequence's (run_hit, run_miss, run_rank) with its run-spread multiplier applied to
    every draft table (``ChanceAt.run_spread``); None without a spread. Called only where the
    chance has run tables."""
    if not at.run_spread:
        return None
    rs = deal_spread(at.run_spread, n, stream(seed, "run_spread"))
    cache: dict[float, tuple[list | None, ...]] = {}
    out = []
    for r in rs.tolist():
        if r not in cache:
            moved = dataclasses.replace(
                at,
                **{f: odds_alpha(getattr(at, f), r) for f in RUN_ALPHA_FIELDS},
                run_spread=(),
            )
            first, miss = _run_cdfs(moved, policy, miss_kind)
            by_rank = (
                _rank_tables(moved, policy, miss_kind)["run_rank"] if first is not None else None
            )
            cache[r] = tuple(t.tolist() if t is not None else None for t in (first, miss, by_rank))
        out.append(cache[r])
    return tuple(out)


def _rank_tables(at: ChanceAt, policy: Policy, miss_kind: str) -> dict[str, np.ndarray | None]:
    """``Plan``'s run_rank, fast_rank and rank bounds (None where the chance has no table)."""
    draft, fast, shared = at.run_alpha_rank, at.alpha_fast_rank, at.run_alpha_for("hit")
    fast_rows = at.alpha_fast_draft_rank
    out: dict[str, np.ndarray | None] = dict.fromkeys(
        ("run_rank", "fast_rank", "rank_bounds", "rank_bounds_miss")
    )
    if policy.mode != "ssd" or not shared or not (draft or fast or fast_rows):
        return out
    k = policy.k
    if draft:
        rest = [shared[min(i, len(shared) - 1)] for i in range(1, k)]
        out["run_rank"] = np.stack([accept_cdf([r, *rest], k) for r in draft])
    if fast_rows and miss_kind == "fast":  # whole rows by the rank before
        out["fast_rank"] = np.stack([accept_cdf(row, k) for row in fast_rows])
    elif fast and miss_kind == "fast":  # after a draft row: its own later positions, if measured
        tail = at.alpha_fast_draft[1:] or at.alpha_fast[1:] or at.alpha_fast
        rest = [tail[min(i, len(tail) - 1)] for i in range(k - 1)]
        out["fast_rank"] = np.stack([accept_cdf([r, *rest], k) for r in fast])
    edges = rank_bucket_edges(max(len(draft), len(fast), len(fast_rows)))

    def bounds(kind: str) -> np.ndarray:
        rows = [np.atleast_1d(coverage_for(at, kind, j, k, edges)) for j in range(k + 1)]
        return np.stack(rows).reshape(k + 1, len(edges))

    out["rank_bounds"] = bounds("hit")
    out["rank_bounds_miss"] = bounds(miss_kind)
    return out


def _fast_context_cdfs(
    at: ChanceAt, policy: Policy, miss_kind: str
) -> dict[str, np.ndarray] | None:
    """``Plan.fast_before``: the contexts with a table (None without a fast fallback)."""
    if policy.mode != "ssd" or miss_kind != "fast":
        return None
    tables = {c: getattr(at, f"alpha_fast_{c}") for c in FAST_CONTEXTS}
    return {c: accept_cdf(t, policy.k) for c, t in tables.items() if t} or None


def make_plan(
    profile: Profile,
    policy: Policy,
    workload: Workload,
    seed: int | None = None,
    replay: Replay | None = None,
) -> Plan:
    """Check the inputs (clear errors before any work) and resolve them into a Plan."""
    seed = _check_inputs(profile, policy, workload, seed)
    prompts, outputs = _lengths(workload, seed)
    longest = int((prompts + outputs).max()) + policy.k + 1
    if longest > profile.max_context_tokens:
        raise fail(
            "Workload",
            "prompt_len_tokens + output_len_tokens",
            longest - policy.k - 1,
            f"at most Profile.max_context_tokens - (k+1) = {profile.max_context_tokens - policy.k - 1} "
            f"for profile {profile.name!r}",
        )
    ssd = policy.mode == "ssd"
    # Saguaro's rescale applies to SSD's tree and jit sampling only (not to SD's drafting).
    at = chance_at(profile.chance, workload.temperature, policy.rescale if ssd else 1.0)
    k = policy.k
    miss_kind = policy.fallback_for(workload.batch_size) if ssd else "hit"
    draft_t = (
        policy.draft_temperature if policy.draft_temperature is not None else workload.temperature
    )
    if replay is not None:
        if workload.temperature != 0 or draft_t != 0:
            raise SchemaError(
                f"simulate: a replay holds greedy texts; got temperature={workload.temperature:g}, "
                f"draft temperature={draft_t:g}, expected both 0"
            )
        replay.check_fits(prompts, int(outputs.max()), k, "simulate")
    rs = _spreads(at, policy, miss_kind, len(outputs), seed)
    spread = _spread_cdfs(at, policy, miss_kind, rs)
    runs = _run_cdfs(at, policy, miss_kind)
    ranked = _rank_tables(at, policy, miss_kind) if runs[0] is not None else {}
    run_seq = _run_seq(at, policy, miss_kind, len(outputs), seed) if runs[0] is not None else None
    return Plan(
        profile=profile,
        policy=policy,
        workload=workload,
        seed=seed,
        chance=at,
        miss_kind=miss_kind,
        prompt_lens=prompts,
        output_lens=outputs,
        cdf_hit=accept_cdf(at.alpha, k),
        cdf_miss=accept_cdf(at.alpha_for(miss_kind), k),
        thr_hit=hit_thresholds(at, "hit", k, policy.fan_out) if ssd else np.zeros(0),
        thr_miss=hit_thresholds(at, miss_kind, k, policy.fan_out_miss) if ssd else np.zeros(0),
        with_dists=workload.temperature > 0 or draft_t > 0,
        cdf_hit_seq=spread[0],
        cdf_miss_seq=spread[1],
        run_hit=runs[0],
        run_miss=runs[1],
        bonus_run=float(coverage_for(at, "hit", k, k, 1)) if runs[0] is not None else 0.0,
        **ranked,
        fast_before=_fast_context_cdfs(at, policy, miss_kind) if runs[0] is not None else None,
        fast_nomatch=dict(zip(FAST_CONTEXTS, at.fast_nomatch, strict=True))
        if runs[0] is not None and miss_kind == "fast" and at.fast_nomatch
        else {},
        cov_seq=deal_spread(at.coverage_spread, len(outputs), stream(seed, "coverage_spread"))
        if ssd and runs[0] is not None and at.coverage_spread
        else None,
        run_seq=run_seq,
        thr_hit_cut=np.array(
            [float(coverage_for(at, "hit", k, k, f)) for f in policy.fan_out] if ssd else []
        ),
        replay=replay,
    )
