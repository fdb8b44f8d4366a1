"""Counting what traces say about chance: acceptance per position and bonus ranks, per (T, C).

A trace's sequence-steps are sorted by proposer kind (``ssdsim.chance.PROPOSERS``): ``hit`` for
SD proposals and SSD proposals served from the speculation cache, ``jit`` for SSD rows the draft
decoded after a miss, ``fast`` for rows the fast speculator proposed. Acceptance counts: position
i was reached when at least i proposals were accepted and more than i were proposed, and passed
when more than i were accepted (the fast speculator's missing proposals count as rejected,
so that its k positions carry the chance of each accepted length). Ranks: the bonus token's rank among the draft's candidates at
position ``accepted_len`` (``0``: beyond the recorded depth), for positions j < proposed (after
a rejection) and for the bonus after every proposal was accepted.

Run lengths (``Tally.run_alpha``): acceptance indexed by how many draft tokens in a row the
target had accepted before a proposal (``ssdsim.chance``), for SD rows (``sd``), SSD hits and jit
rows, counted only where the run is known: after a rejection (run 0) or after a fully accepted
step whose bonus rank was recorded (rank 1: the run goes on through the bonus; else it ends).
Steps after an SD full acceptance (no rank), a fast row or the prefill are not counted.
SSD rows are also counted by the rank of the bonus before them, where the row before was a
hit, jit or fast row whose bonus rank was recorded and that did not carry a run on: the first
proposal of hit and jit rows (``Tally.run_alpha_rank("draft")``) and of the fast speculator's
rows (``"fast"``; its missing proposals count as rejected). The fast speculator's rows are
also counted by the row before (``Tally.alpha_fast_context``, ``FAST_CONTEXTS``): none (the
sequence's first step), a fast row with all k proposals accepted, one with a rejection, a
draft row, or a fast row that found no n-gram match (with the share of such rows among each
context's rows that accepted nothing, ``Tally.fast_nomatch``); only those after a draft row
count by rank too (the draft's miss at a deep rank), whole rows by bucket as well
(``Tally.alpha_fast_draft_rank``).

Groups: one per (temperature, rescale); SD and AR traces count at rescale 1 (Saguaro's rescale
acts only on SSD's sampling). Pure Python and numpy; never torch or the executor.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ssdsim._schema import SchemaError
from ssdsim.chance import rank_bucket
from ssdsim.profile import FAST_CONTEXTS
from ssdsim.trace import SeqOutcome, Trace

KINDS = ("hit", "jit", "fast")
RUN_KINDS = ("sd", "hit", "jit")
RUN_MAX = 32  # run lengths from here on are counted together
RANK_GROUPS = ("draft", "fast")
RANK_BUCKETS = 6  # bonus ranks 1, 2-3, 4-7, 8-15, 16-31, and 32 on (or beyond the recorded depth)


@dataclass
class Tally:
    """Counts of one (temperature, rescale) group over any number of traces."""

    reached: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in KINDS})
    passed: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in KINDS})
    reject_ranks: dict[str, dict[int, list[int]]] = field(
        default_factory=lambda: {k: defaultdict(list) for k in KINDS}
    )
    bonus_ranks: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in KINDS})
    ranks_recorded: bool = False
    seqsteps: int = 0
    sources: list[str] = field(default_factory=list)
    fast_ranks: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    # per (trace, sequence): position counts of its draft proposals (hit and jit kinds)
    per_seq: dict[tuple[str, int], tuple[list[int], list[int]]] = field(default_factory=dict)
    # the same for the fast speculator's proposals
    per_seq_fast: dict[tuple[str, int], tuple[list[int], list[int]]] = field(default_factory=dict)
    run_reached: dict[str, list[int]] = field(
        default_factory=lambda: {k: [0] * RUN_MAX for k in RUN_KINDS}
    )
    run_passed: dict[str, list[int]] = field(
        default_factory=lambda: {k: [0] * RUN_MAX for k in RUN_KINDS}
    )
    # SSD's first proposals by the bucket of the bonus rank before them (``rank_bucket``), of
    # draft rows (hit, jit) and fast rows
    rank_reached: dict[str, list[int]] = field(
        default_factory=lambda: {g: [0] * RANK_BUCKETS for g in RANK_GROUPS}
    )
    rank_passed: dict[str, list[int]] = field(
        default_factory=lambda: {g: [0] * RANK_BUCKETS for g in RANK_GROUPS}
    )
    # per (trace, sequence): its draft proposals' counts by cell (``Tally.add_run``'s
    # (kind, run) and ``add_rank``'s ("rank", bucket) of draft rows), for the joint fit of run
    # tables and per-sequence spread (``ssdsim.calibrate.chance_fit.fit_run_spread``)
    per_seq_run: dict[tuple[str, int], dict[tuple[str, int], list[int]]] = field(
        default_factory=dict
    )
    # per (trace, sequence): its draft rows' bonus ranks as (accepted length, or -1 after every
    # proposal was accepted; rank, 0 beyond the recorded depth), for ``fit_coverage_spread``
    per_seq_ranks: dict[tuple[str, int], list[tuple[int, int]]] = field(default_factory=dict)
    # the fast speculator's rows by the row before (``FAST_CONTEXTS``), k positions each
    fast_ctx_reached: dict[str, list[int]] = field(
        default_factory=lambda: {c: [] for c in FAST_CONTEXTS}
    )
    fast_ctx_passed: dict[str, list[int]] = field(
        default_factory=lambda: {c: [] for c in FAST_CONTEXTS}
    )
    # per context: fast rows that proposed nothing (no n-gram match; they accepted nothing)
    fast_ctx_nomatch: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # the fast speculator's rows after a draft row, by the bucket of that row's bonus rank
    # (``rank_bucket``), k positions each (``Tally.alpha_fast_draft_rank``)
    fast_rank_reached: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    fast_rank_passed: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))

    def add(
        self,
        kind: str,
        o: SeqOutcome,
        ranked: bool,
        proposed: int | None = None,
        source: str = "",
    ) -> None:
        """Count one sequence-step; ``proposed`` overrides the record's (fast rows: k)."""
        proposed = o.proposed if proposed is None else max(proposed, o.proposed)
        _count(self.reached[kind], self.passed[kind], o.accepted_len, proposed)
        per_seq = self.per_seq_fast if kind == "fast" else self.per_seq
        counts = per_seq.setdefault((source, o.seq), ([], []))
        _count(*counts, o.accepted_len, proposed)
        self.seqsteps += 1
        if not ranked:
            return
        rank = o.bonus_rank or 0
        if kind == "fast":  # by accepted length, proposals or not (ChancePoint.coverage_fast)
            self.fast_ranks[o.accepted_len].append(rank)
        if o.accepted_len < o.proposed:
            self.reject_ranks[kind][o.accepted_len].append(rank)
        else:
            self.bonus_ranks[kind].append(rank)
        if kind != "fast":
            j = o.accepted_len if o.accepted_len < o.proposed else -1
            self.per_seq_ranks.setdefault((source, o.seq), []).append((j, rank))

    def add_run(
        self, kind: str, run: int, accepted_len: int, proposed: int, seq: tuple[str, int] = ("", 0)
    ) -> None:
        """Count one step's proposals by run length (its first proposal followed ``run``), also
        under sequence ``seq`` (trace, sequence id)."""
        reached, passed = self.run_reached[kind], self.run_passed[kind]
        cells = self.per_seq_run.setdefault(seq, {})
        for i in range(min(accepted_len + 1, proposed)):
            at = min(run + i, RUN_MAX - 1)
            reached[at] += 1
            passed[at] += int(accepted_len > i)
            cell = cells.setdefault((kind, 0) if at == 0 else ("run", at), [0, 0])
            cell[0] += 1
            cell[1] += int(accepted_len > i)

    def add_rank(
        self,
        group: str,
        rank: int,
        accepted_len: int,
        seq: tuple[str, int] = ("", 0),
        k: int | None = None,
    ) -> None:
        """Count one first proposal of a ``group`` row (``draft`` or ``fast``) after a bonus of
        ``rank`` (0: beyond the recorded depth); a draft row's also under sequence ``seq``, a
        fast row's (with its ``k``) also position by position in its bucket's row."""
        at = rank_bucket(rank, RANK_BUCKETS)
        self.rank_reached[group][at] += 1
        self.rank_passed[group][at] += int(accepted_len > 0)
        if group == "fast" and k is not None:
            _count(self.fast_rank_reached[at], self.fast_rank_passed[at], accepted_len, k)
        if group == "draft":
            cell = self.per_seq_run.setdefault(seq, {}).setdefault(("rank", at), [0, 0])
            cell[0] += 1
            cell[1] += int(accepted_len > 0)

    def alpha_fast_context(self, context: str, min_reached: int = 20) -> tuple[float, ...]:
        """Acceptance by position of the fast speculator's rows after ``context``
        (``FAST_CONTEXTS``), pooled from the first sparse position on; empty when its first
        position was reached fewer than ``min_reached`` times."""
        reached = self.fast_ctx_reached[context]
        if not reached or reached[0] < min_reached:
            return ()
        return _rates(reached, self.fast_ctx_passed[context], min_reached) or ()

    def fast_nomatch(self, min_rows: int = 20) -> tuple[float, ...]:
        """Per context (``FAST_CONTEXTS``, in order), the share of fast rows with no accepted
        proposal that found no n-gram match (``ChancePoint.fast_nomatch``); a context with
        fewer than ``min_rows`` such rows takes the share pooled over all. Empty when no fast
        row proposed nothing, or fewer than ``min_rows`` rows accepted none."""
        # rows that accepted nothing: reached position 0 and did not pass it
        zero = {
            c: r[0] - self.fast_ctx_passed[c][0] if r else 0
            for c, r in self.fast_ctx_reached.items()
        }
        rows, nomatch = sum(zero.values()), sum(self.fast_ctx_nomatch.values())
        if rows < min_rows or nomatch == 0:
            return ()
        pooled = nomatch / rows
        return tuple(
            self.fast_ctx_nomatch[c] / zero[c] if zero[c] >= min_rows else pooled
            for c in FAST_CONTEXTS
        )

    def alpha_fast_draft_rank(self, min_reached: int = 30) -> tuple[tuple[float, ...], ...]:
        """Acceptance by position of the fast speculator's rows after a draft row, one row per
        bucket of that draft row's bonus rank (``rank_bucket``), each pooled from its first
        sparse position on (``alpha``'s rule). Buckets whose first position was reached fewer
        than ``min_reached`` times pool with every deeper one from the first such bucket on;
        buckets before the first well-counted one borrow its row. Empty when none has that many.

        The first position alone (``run_alpha_rank("fast")``) misses how the row goes on: after
        a deep rank the target is repeating its context and the n-gram speculator copies whole
        rows (loop 16's calibration traces at B=1, T=0, k=8: 58% of fast rows after a rank 4-7
        bonus accepted all 8 proposals, 22% after rank 1)."""
        buckets = sorted(self.fast_rank_reached)
        if not buckets:
            return ()
        reached = [self.fast_rank_reached.get(b, []) for b in range(buckets[-1] + 1)]
        passed = [self.fast_rank_passed.get(b, []) for b in range(buckets[-1] + 1)]
        first = next((b for b, r in enumerate(reached) if r and r[0] >= min_reached), None)
        if first is None:
            return ()
        rows: list[tuple[float, ...]] = []
        for b in range(first, len(reached)):
            if not reached[b] or reached[b][0] < min_reached:  # pool this bucket and the rest
                r, p = _pool(reached[b:]), _pool(passed[b:])
                if r and r[0] >= min_reached:
                    rows.append(_rates(r, p, min(20, min_reached)) or ())
                break
            rows.append(_rates(reached[b], passed[b], min(20, min_reached)) or ())
        return (rows[0],) * first + tuple(rows)

    def run_alpha_rank(self, group: str, min_reached: int = 100) -> tuple[float, ...] | None:
        """Acceptance of an SSD row's first proposal (``draft`` or ``fast`` rows) by the bucket
        of the rank before it (``rank_bucket``), pooled from the first bucket reached fewer than
        ``min_reached`` times on (the last entry stands for every deeper rank); None when no
        bucket has that many.

        Buckets, not ranks: at T = 0 the same prompts give the same tokens run after run, so a
        single rank gathers a few positions' worth of counts (loop 7's validation traces at T = 0:
        every draft row after a rank-5 bonus accepted, 5% after rank 7), while the buckets fall
        steadily (0.85, 0.74, 0.56, 0.38)."""
        reached, passed = self.rank_reached[group], self.rank_passed[group]
        first = next((i for i, r in enumerate(reached) if r >= min_reached), None)
        if first is None:
            return None
        # buckets before the first well-counted one borrow its rate (a sparse tree's misses
        # after rank 1 are rare where the tree has a branch there)
        rates = _rates(reached[first:], passed[first:], min_reached) or ()
        return (rates[0],) * first + tuple(rates)

    def alpha(self, kind: str, min_reached: int = 20) -> tuple[float, ...] | None:
        """Conditional acceptance per position; the positions from the first one reached fewer
        than ``min_reached`` times on count as one (pooled), and later positions repeat it."""
        return _rates(self.reached[kind], self.passed[kind], min_reached)

    def run_alpha(
        self, kind: str | None = None, min_reached: int = 20, tail_min: int = 200
    ) -> tuple[float, ...] | None:
        """Acceptance by run length of one kind (``RUN_KINDS``; None: all kinds pooled), pooled
        from the first sparse length on.

        The last entry stands for every longer run, so it pools the longest lengths until they
        hold ``tail_min`` proposals (a rate of 1.0 from a few dozen long runs repeated forever
        would let a simulated run never end)."""
        kinds = RUN_KINDS if kind is None else (kind,)
        reached = [sum(c) for c in zip(*(self.run_reached[k] for k in kinds), strict=True)]
        passed = [sum(c) for c in zip(*(self.run_passed[k] for k in kinds), strict=True)]
        last = len(reached)
        while last > 1 and sum(reached[last - 1 :]) < tail_min:
            last -= 1
        head = _rates(reached[: last - 1], passed[: last - 1], min_reached) or ()
        if len(head) < last - 1:  # pooled early: that pool already stands for the rest
            return head or None
        rest_r, rest_p = sum(reached[last - 1 :]), sum(passed[last - 1 :])
        return (*head, rest_p / rest_r) if rest_r else (head or None)

    def run_tables(self, min_reached: int = 20) -> dict[str, tuple[float, ...]]:
        """Per kind: its own rate at run 0, then the rates of all kinds pooled (runs >= 1).

        How a step was served shows in its first proposal (a hit's bonus was among the draft's
        top F, a jit row's was not); later proposals depend on the run more than on the kind,
        and pooling them keeps thin kinds (a couple of jit calibration runs) from carrying
        their prompts' quirks into every prediction."""
        shared = self.run_alpha(None, min_reached)
        out: dict[str, tuple[float, ...]] = {}
        for kind in RUN_KINDS:
            reached = self.run_reached[kind]
            if shared and reached and reached[0] >= min_reached:
                out[kind] = (self.run_passed[kind][0] / reached[0], *shared[1:])
        return out

    def samples(self, kind: str) -> int:
        return self.reached[kind][0] if self.reached[kind] else 0


def _pool(counts: list[list[int]]) -> list[int]:
    """Position-wise sums of count lists of different lengths."""
    out = [0] * max((len(c) for c in counts), default=0)
    for c in counts:
        for i, v in enumerate(c):
            out[i] += v
    return out


def _rates(reached: list[int], passed: list[int], min_reached: int) -> tuple[float, ...] | None:
    out: list[float] = []
    for i, (r, p) in enumerate(zip(reached, passed, strict=True)):
        if r < min_reached:
            rest_r, rest_p = sum(reached[i:]), sum(passed[i:])
            if rest_r > 0 and (rest_r >= min_reached or not out):
                out.append(rest_p / rest_r)
            break
        out.append(p / r)
    return tuple(out) or None


def next_run(run: int | None, o: SeqOutcome, kind: str | None, ranked: bool) -> int | None:
    """The run length after a step (None: unknown), from the run before it."""
    if kind in (None, "fast"):
        return None
    if o.accepted_len < o.proposed:
        return 0
    if o.bonus_rank is None and not ranked:
        return None  # a full acceptance whose bonus rank nobody recorded
    if o.bonus_rank != 1:
        return 0  # the draft's top choice was not the bonus: the run ends there
    return None if run is None else run + o.accepted_len + 1


def fast_context_after(kind: str | None, accepted_len: int, k: int, proposed: int = 1) -> str:
    """The context (``FAST_CONTEXTS``) a fast row has after a row of ``kind`` (None: AR) that
    accepted ``accepted_len`` of ``proposed`` proposals (a fast row with none found no match)."""
    if kind == "fast":
        if proposed == 0:
            return "nomatch"
        return "full" if accepted_len >= k else "part"
    return "draft"


def _count(reached: list[int], passed: list[int], accepted_len: int, proposed: int) -> None:
    """Position i reached when at least i proposals were accepted and more than i proposed."""
    while len(reached) < proposed:
        reached.append(0)
        passed.append(0)
    for i in range(min(accepted_len + 1, proposed)):
        reached[i] += 1
        passed[i] += int(accepted_len > i)


def kind_of(mode: str, o: SeqOutcome) -> str | None:
    """The proposer kind of one sequence-step (None: no proposer, e.g. AR).

    An SSD miss is ``jit`` when the draft proposed, else ``fast`` (the fast speculator, which
    may propose fewer than k tokens or none at all).
    """
    if mode == "ar":
        return None
    if mode == "ssd" and o.cache_hit is False:
        return "jit" if o.proposer == "draft" else "fast"
    if o.proposer == "fast":
        return "fast"
    return "hit" if o.proposed > 0 else None


def group_key(trace: Trace, path: str) -> tuple[float, float]:
    """(temperature, rescale) of a trace, from its header; errors name the file."""
    try:
        temperature = float(trace.header.workload["temperature"])
        mode = trace.header.policy["mode"]
        rescale = float(trace.header.policy.get("rescale", 1.0)) if mode == "ssd" else 1.0
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(
            f"{path}: header needs workload.temperature and policy.mode (got {exc!r})"
        ) from exc
    return temperature, rescale


def tally_traces(traces: dict[str, Trace]) -> dict[tuple[float, float], Tally]:
    """Count every trace's sequence-steps into its (temperature, rescale) group."""
    groups: dict[tuple[float, float], Tally] = defaultdict(Tally)
    for path, trace in traces.items():
        mode = trace.header.policy.get("mode")
        if mode not in ("ar", "sd", "ssd"):
            raise SchemaError(f"{path}: header policy.mode got {mode!r}, expected ar, sd or ssd")
        if not trace.steps:
            raise SchemaError(f"{path}: no step records (an interrupted run?)")
        tally = groups[group_key(trace, path)]
        tally.sources.append(path)
        ranked = any(o.bonus_rank is not None for s in trace.steps for o in s.seqs)
        tally.ranks_recorded |= ranked
        k = int(trace.header.policy.get("k", 0))
        runs: dict[int, int | None] = {}
        ranks: dict[int, int | None] = {}  # the bonus rank before the next row (SSD)
        before: dict[int, str] = {}  # the fast context of the next row (FAST_CONTEXTS)
        for step in trace.steps:
            for o in step.seqs:
                seq = (path, o.seq)
                kind = kind_of(mode, o)
                if kind is not None:  # missing fast proposals count as rejections (k positions)
                    tally.add(kind, o, ranked, k if kind == "fast" else None, path)
                run = runs.get(o.seq)
                if kind in ("hit", "jit") and run is not None:
                    tally.add_run(
                        "sd" if mode == "sd" else kind, run, o.accepted_len, o.proposed, seq
                    )
                if kind == "fast":
                    context = before.get(o.seq, "first")
                    reached, passed = tally.fast_ctx_reached, tally.fast_ctx_passed
                    _count(reached[context], passed[context], o.accepted_len, k)
                    tally.fast_ctx_nomatch[context] += int(o.proposed == 0)
                rank = ranks.get(o.seq)
                after_draft = before.get(o.seq) == "draft"
                if rank is not None and kind in KINDS and (kind != "fast" or after_draft):
                    group = "fast" if kind == "fast" else "draft"
                    tally.add_rank(group, rank, o.accepted_len, seq, k)
                before[o.seq] = fast_context_after(kind, o.accepted_len, k, o.proposed)
                runs[o.seq] = next_run(run, o, kind, ranked)
                ends_run = kind == "fast" or (kind in ("hit", "jit") and runs[o.seq] == 0)
                ranks[o.seq] = (
                    (o.bonus_rank or 0) if mode == "ssd" and ranked and ends_run else None
                )
    return dict(groups)


def coverage_table(ranks: list[int], depth: int) -> np.ndarray:
    """Empirical c(F) for F = 1..depth: the fraction of ranks in 1..F (0 = beyond the depth)."""
    r = np.asarray(ranks, dtype=np.int64)
    if r.size == 0:
        return np.zeros(depth)
    hits = np.bincount(r[(r >= 1) & (r <= depth)], minlength=depth + 1)[1:]
    return np.cumsum(hits) / r.size
