"""Counting what traces say about chance: acceptance per position and bonus ranks, per (T, C).

A trace's sequence-steps are sorted by proposer kind (``ssdsim.chance.PROPOSERS``): ``hit`` for
SD proposals and SSD proposals served from the speculation cache, ``jit`` for SSD rows the draft
decoded after a miss, ``fast`` for rows the fast speculator proposed. Acceptance counts: position
i was reached when at least i proposals were accepted and more than i were proposed, and passed
when more than i were accepted (the fast speculator's missing proposals count as rejected,
so that its k positions carry the chance of each accepted length). Ranks: the bonus token's rank among the draft's candidates at
position ``accepted_len`` (``0``: beyond the recorded depth), for positions j < proposed (after
a rejection) and for the bonus after every proposal was accepted.

Groups: one per (temperature, rescale); SD and AR traces count at rescale 1 (Saguaro's rescale
acts only on SSD's sampling). Pure Python and numpy; never torch or the executor.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ssdsim._schema import SchemaError
from ssdsim.trace import SeqOutcome, Trace

KINDS = ("hit", "jit", "fast")


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

    def alpha(self, kind: str, min_reached: int = 20) -> tuple[float, ...] | None:
        """Conditional acceptance per position; the positions from the first one reached fewer
        than ``min_reached`` times on count as one (pooled), and later positions repeat it."""
        out: list[float] = []
        reached, passed = self.reached[kind], self.passed[kind]
        for i, (r, p) in enumerate(zip(reached, passed, strict=True)):
            if r < min_reached:
                rest_r, rest_p = sum(reached[i:]), sum(passed[i:])
                if rest_r > 0 and (rest_r >= min_reached or not out):
                    out.append(rest_p / rest_r)
                break
            out.append(p / r)
        return tuple(out) or None

    def samples(self, kind: str) -> int:
        return self.reached[kind][0] if self.reached[kind] else 0


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
        for step in trace.steps:
            for o in step.seqs:
                kind = kind_of(mode, o)
                if kind is not None:  # missing fast proposals count as rejections (k positions)
                    tally.add(kind, o, ranked, k if kind == "fast" else None, path)
    return dict(groups)


def coverage_table(ranks: list[int], depth: int) -> np.ndarray:
    """Empirical c(F) for F = 1..depth: the fraction of ranks in 1..F (0 = beyond the depth)."""
    r = np.asarray(ranks, dtype=np.int64)
    if r.size == 0:
        return np.zeros(depth)
    hits = np.bincount(r[(r >= 1) & (r <= depth)], minlength=depth + 1)[1:]
    return np.cumsum(hits) / r.size
