"""SSD's step log: raw per-step facts gathered on the hot path, turned into trace records later.

Two facts about step t arrive only with step t+1's response (or the batch's FINISH): the rank
of each sequence's bonus token among the draft's candidates (the draft learns the outcome from
the next key) and the window of the pre-speculation that ran during step t's verification.
So the engine appends cheap ``RawStep`` entries while decoding and ``StepLog.records`` builds
the ``ssdsim.trace.StepRecord`` objects after the batch, off the decode clock.

Times: the target's are decode-clock seconds; the draft's are absolute ``time.perf_counter``
readings (one clock for every process on a host), converted with the batch's offset.
Derived per step: wait_s (the request was sent while the draft was still pre-speculating),
link_s (the round trip minus that wait and minus the draft's serving time), draft_s (jit
decoding plus the fast speculator's proposals: drafting on the critical path).
Imports the ssdsim trace contract and executor.ssd.protocol only.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from executor.ssd.protocol import DraftTimes
from ssdsim.trace import SeqOutcome, StepRecord


@dataclass
class RawSeq:
    row: int
    seq: int
    proposed: int
    accepted_len: int
    token_ids: tuple[int, ...]
    cache_hit: bool
    proposer: str


@dataclass
class RawStep:
    """One step as the target saw it (decode-clock seconds) plus the draft's answer times."""

    t_start_s: float
    t_request_s: float
    t_response_s: float
    t_verify_start_s: float
    t_verify_end_s: float
    t_end_s: float
    seqs: list[RawSeq]
    fast_s: float = 0.0
    fallback: str | None = None
    draft: DraftTimes | None = None  # this step's serving window (got/respond/jit)
    prespec: tuple[float, ...] | None = None  # start, end, glue_s, tree_s, tree depth
    ranks: list[int] = field(default_factory=list)  # per row, 0 = unknown


class StepLog:
    """The raw steps of one batch; ``offset_s`` maps perf_counter readings to decode time."""

    def __init__(self) -> None:
        self.steps: list[RawStep] = []
        self.offset_s = 0.0

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: RawStep) -> None:
        self.steps.append(step)

    def attach_previous(
        self, times: DraftTimes, ranks: list[int] | None, earlier: list[int] | None = None
    ) -> None:
        """What a response tells about the previous step (its bonus ranks, pre-speculation) and,
        from a shared-cache link, the bonus ranks of the step before it (``earlier``)."""
        if not self.steps:
            return
        prev = self.steps[-1]
        if ranks is not None:
            prev.ranks = ranks
        if earlier is not None and len(self.steps) >= 2:
            self.steps[-2].ranks = earlier
        if times.prev_prespec_end_s > 0:
            prev.prespec = (
                times.prev_prespec_start_s,
                times.prev_prespec_end_s,
                times.prev_glue_s,
                times.prev_tree_s,
                times.prev_tree_depth,
            )

    def _rel(self, perf_s: float) -> float:
        return max(0.0, perf_s - self.offset_s)

    def records(self, first_step: int) -> list[StepRecord]:
        out = []
        for i, s in enumerate(self.steps):
            prev = self.steps[i - 1] if i else None
            kw: dict[str, Any] = {}
            wait_s = link_s = 0.0
            if s.draft is not None:
                if prev is not None and prev.prespec is not None:
                    wait_s = max(0.0, self._rel(prev.prespec[1]) - s.t_request_s)
                serve_s = s.draft.respond_s - s.draft.got_s
                link_s = max(0.0, s.t_response_s - s.t_request_s - wait_s - serve_s)
                kw = dict(request_s=s.t_request_s, response_s=s.t_response_s)
            if s.prespec is not None:
                kw.update(
                    prespec_start_s=self._rel(s.prespec[0]), prespec_end_s=self._rel(s.prespec[1])
                )
            jit_s = s.draft.jit_s if s.draft is not None else 0.0
            out.append(
                StepRecord(
                    step=first_step + i,
                    t_start_s=s.t_start_s,
                    t_end_s=s.t_end_s,
                    seqs=tuple(self._outcome(o, s.ranks) for o in s.seqs),
                    verify_s=s.t_verify_end_s - s.t_verify_start_s,
                    draft_s=jit_s + s.fast_s,
                    wait_s=wait_s,
                    link_s=link_s,
                    verify_start_s=s.t_verify_start_s,
                    verify_end_s=s.t_verify_end_s,
                    fallback=s.fallback,
                    **kw,
                )
            )
        return out

    @staticmethod
    def _outcome(o: RawSeq, ranks: list[int]) -> SeqOutcome:
        rank = ranks[o.row] if o.row < len(ranks) else 0
        return SeqOutcome(
            seq=o.seq,
            proposed=o.proposed,
            accepted_len=o.accepted_len,
            emitted_tokens=len(o.token_ids),
            cache_hit=o.cache_hit,
            bonus_rank=rank if rank > 0 else None,
            proposer=o.proposer,
            token_ids=o.token_ids,
        )


@dataclass
class DraftStats:
    """Run totals of the draft's side (for RunSummary.draft_busy_s and extra)."""

    serve_s: list[float] = field(default_factory=list)
    jit_s: list[float] = field(default_factory=list)
    glue_s: list[float] = field(default_factory=list)
    tree_s: list[float] = field(default_factory=list)
    prespec_s: list[float] = field(default_factory=list)
    tree_depth: list[float] = field(default_factory=list)
    round_trip_s: list[float] = field(default_factory=list)

    def add_batch(self, log: StepLog) -> None:
        for s in log.steps:
            if s.draft is not None:
                self.serve_s.append(s.draft.respond_s - s.draft.got_s)
                self.jit_s.append(s.draft.jit_s)
                self.round_trip_s.append(s.t_response_s - s.t_request_s)
            if s.prespec is not None:
                start, end, glue, tree, depth = s.prespec
                self.prespec_s.append(end - start)
                self.glue_s.append(glue)
                self.tree_s.append(tree)
                self.tree_depth.append(depth)

    @property
    def busy_s(self) -> float:
        return sum(self.serve_s) + sum(self.prespec_s)

    def extra(self) -> dict[str, float]:
        def mean(xs: list[float]) -> float:
            return statistics.fmean(xs) if xs else 0.0

        return {
            "draft_serve_mean_s": mean(self.serve_s),
            "draft_jit_total_s": sum(self.jit_s),
            "draft_glue_mean_s": mean(self.glue_s),
            "draft_tree_mean_s": mean(self.tree_s),
            "draft_prespec_mean_s": mean(self.prespec_s),
            "draft_tree_depth_mean": mean(self.tree_depth),
            "round_trip_p50_s": percentile(self.round_trip_s, 50),
            "round_trip_p99_s": percentile(self.round_trip_s, 99),
        }


def percentile(xs: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of xs; 0 for an empty list."""
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(pct / 100 * len(s) + 0.5) - 1))]
