"""Turn sampled outcomes and timelines into the RunSummary and, when asked, trace records.

``Recorder.summary`` computes exactly what ``ssdsim.trace.summary_from_steps`` computes from
the step records (same sums in the same order), without building a record per step; a test
checks the two agree on traced runs. Step records are built only when a trace is written.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ssdsim.chance import odds_coverage, rank_cdf_table, sample_rank
from ssdsim.sim.costs import StepCosts
from ssdsim.sim.outcomes import BatchOutcomes
from ssdsim.sim.plan import Plan
from ssdsim.sim.timeline import Timeline
from ssdsim.trace import RunSummary, SeqOutcome, StepRecord

RANK_DEPTH = 1024


class Recorder:
    """Collects per-step times and per-sequence counts over the batches of one run."""

    def __init__(self, plan: Plan, keep_steps: bool) -> None:
        self.plan = plan
        self.keep_steps = keep_steps
        self.records: list[StepRecord] = []
        self.start: list[float] = []
        self.end: list[float] = []
        self.verify: list[float] = []
        self.draft: list[float] = []
        self.wait: list[float] = []
        self.link: list[float] = []
        self.draft_busy: list[float] = []
        self.per_seq: list[tuple[int, float, float]] = []
        self.accepted = self.emitted = self.seqsteps = self.hits = self.max_batch = 0
        self._ranks: dict[tuple[str, float], np.ndarray] = {}

    def add_batch(self, out: BatchOutcomes, costs: StepCosts, tl: Timeline) -> None:
        ssd = self.plan.mode == "ssd"
        n = out.steps
        self.start += tl.start
        self.end += tl.end
        self.verify += costs.verify
        if ssd:
            self.draft += [j + f for j, f in zip(costs.draft, costs.fast, strict=True)]
            self.wait += [s - a for s, a in zip(tl.serve, tl.arrive, strict=True)]
            self.link += [q + r for q, r in zip(costs.link_req, costs.link_resp, strict=True)]
            self.draft_busy += [j + p for j, p in zip(costs.draft, costs.prespec, strict=True)]
        else:
            self.draft += costs.draft or [0.0] * n
            self.wait += [0.0] * n
            self.link += [0.0] * n
            self.draft_busy += costs.draft
        steps_per_seq = out.active.sum(axis=0)
        tokens = out.emitted.sum(axis=0)
        for slot in range(len(out.seq_ids)):
            self.per_seq.append(
                (int(tokens[slot]), tl.start[0], tl.end[int(steps_per_seq[slot]) - 1])
            )
        self.accepted += int(out.accepted.sum())
        self.emitted += int(tokens.sum())
        self.seqsteps += int(steps_per_seq.sum())
        self.hits += int(out.hit.sum())
        self.max_batch = max(self.max_batch, int(out.active.sum(axis=1).max()))
        if self.keep_steps:
            self.records += self._step_records(out, costs, tl)

    def summary(self, extra: dict[str, Any]) -> RunSummary:
        p = self.plan
        decode_s = self.end[-1] - self.start[0]
        per_seq = [tok / (last - first) for tok, first, last in self.per_seq if last > first]
        verify_s = sum(self.verify)
        tps = sum(per_seq) / len(per_seq) if per_seq else 0.0
        tokens_per_step = self.emitted / self.seqsteps
        mean_verify = verify_s / len(self.start)
        eff = None
        if p.mode == "ssd" and mean_verify > 0 and tokens_per_step > 0:
            eff = tps / (tokens_per_step / mean_verify)
        return RunSummary(
            mode=p.mode,
            policy=p.policy.label(),
            batch_size=self.max_batch,
            temperature=p.workload.temperature,
            generated_tokens=self.emitted,
            decode_s=decode_s,
            steps=len(self.start),
            tokens_per_s=tps,
            batch_tokens_per_s=self.emitted / decode_s if decode_s > 0 else 0.0,
            mean_accepted_len=self.accepted / self.seqsteps,
            tokens_per_step=tokens_per_step,
            hit_rate=self.hits / self.seqsteps if p.mode == "ssd" else None,
            verify_s=verify_s,
            draft_busy_s=sum(self.draft_busy),
            draft_critical_s=sum(self.draft),
            wait_s=sum(self.wait),
            link_s=sum(self.link),
            mean_verify_s=mean_verify,
            ssd_efficiency=eff,
            extra=dict(extra),
        )

    # -- trace records (only when tracing) ---------------------------------------------------
    def _rank_table(self, proposer: str, seq: int) -> np.ndarray:
        """c_j(F) rows for sampling ranks, moved by the sequence's coverage multiplier."""
        p = self.plan
        m = 1.0 if p.cov_seq is None else float(p.cov_seq[seq])
        if (proposer, m) not in self._ranks:
            depth = min(p.profile.vocab_size, RANK_DEPTH)
            table = rank_cdf_table(p.chance, proposer, p.policy.k, depth)
            self._ranks[(proposer, m)] = odds_coverage(table, m) if m != 1.0 else table
        return self._ranks[(proposer, m)]

    def _seq_outcomes(self, out: BatchOutcomes, t: int) -> tuple[SeqOutcome, ...]:
        p = self.plan
        k, mode = p.policy.k, p.mode
        seqs = []
        for s in np.flatnonzero(out.active[t]):
            hit = bool(out.hit[t, s])
            kind = "hit" if mode == "sd" or hit else p.miss_kind
            a, proposed = int(out.accepted[t, s]), int(out.proposed[t, s])
            j = k if a >= proposed else a  # every proposal accepted: a bonus (no exclusion)
            rank = (
                int(sample_rank(self._rank_table(kind, out.seq_ids[s]), j, out.rank_u[t, s])[0])
                if mode != "ar"
                else 0
            )
            seqs.append(
                SeqOutcome(
                    seq=int(out.seq_ids[s]),
                    proposed=proposed,
                    accepted_len=a,
                    emitted_tokens=int(out.emitted[t, s]),
                    cache_hit=hit if mode == "ssd" else None,
                    bonus_rank=rank or None,
                    proposer="none" if mode == "ar" else ("fast" if kind == "fast" else "draft"),
                )
            )
        return tuple(seqs)

    def _step_records(self, out: BatchOutcomes, costs: StepCosts, tl: Timeline) -> list[StepRecord]:
        first = len(self.start) - out.steps
        records = []
        for t in range(out.steps):
            g = first + t
            kw: dict[str, Any] = {}
            if self.plan.mode == "ssd":
                any_miss = bool((out.active[t] & ~out.hit[t]).any())
                kw = dict(
                    request_s=tl.start[t],
                    response_s=tl.receive[t],
                    prespec_start_s=tl.respond[t],
                    prespec_end_s=tl.respond[t] + costs.prespec[t],
                    fallback=self.plan.miss_kind if any_miss else None,
                )
            records.append(
                StepRecord(
                    step=g,
                    t_start_s=tl.start[t],
                    t_end_s=tl.end[t],
                    seqs=self._seq_outcomes(out, t),
                    verify_s=costs.verify[t],
                    draft_s=self.draft[g],
                    wait_s=self.wait[g],
                    link_s=self.link[g],
                    verify_start_s=tl.verify_start[t],
                    verify_end_s=tl.end[t],
                    **kw,
                )
            )
        return records
