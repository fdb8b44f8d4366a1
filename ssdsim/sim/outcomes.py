"""What verification does to each sequence of a batch at each step, sampled from seeded streams.

Outcomes do not depend on timing, so they are drawn first (vectorised over the batch) and both
engines replay them. Per (step, slot) one uniform ``u`` (acceptance stream) gives the accepted
length by inverse CDF, A = min{j : u < P(A <= j)}, so a higher acceptance never lowers A for
the same u; one uniform ``v`` (rank stream) decides the next request's cache hit, v < c_A(F_A),
and (when tracing) the bonus rank. Uniforms are drawn in fixed chunks of steps per slot, so step
t of slot s always uses the same numbers whatever the policy (common random numbers).

SSD state per sequence: whether its current request hit. Step 0 of a batch always misses (the
cache is empty after prefill). A hit row's proposals follow ``alpha`` and its next tree uses
``fan_out``; a missed row's follow the fallback's acceptance and ``fan_out_miss``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssdsim.sim.plan import Plan, stream

CHUNK_STEPS = 64


@dataclass(frozen=True)
class BatchOutcomes:
    """Arrays of shape (steps, slots) for one static batch; inactive entries are zero/False."""

    seq_ids: np.ndarray
    active: np.ndarray
    hit: np.ndarray
    accepted: np.ndarray
    emitted: np.ndarray
    rank_u: np.ndarray
    context: np.ndarray

    @property
    def steps(self) -> int:
        return self.active.shape[0]


class _Draws:
    """Chunks of uniforms per slot, with the accepted lengths and hit tests they imply."""

    def __init__(self, plan: Plan, batch_index: int, slots: int) -> None:
        self.plan, self.slots = plan, slots
        self.acc_rng = stream(plan.seed, "accept", batch_index)
        self.rank_rng = stream(plan.seed, "rank", batch_index)
        self.start = -CHUNK_STEPS

    def refill(self) -> None:
        p = self.plan
        self.start += CHUNK_STEPS
        u = self.acc_rng.random((CHUNK_STEPS, self.slots))
        self.v = self.rank_rng.random((CHUNK_STEPS, self.slots))
        self.a_hit = np.searchsorted(p.cdf_hit, u, side="right")
        self.a_miss = np.searchsorted(p.cdf_miss, u, side="right")
        if p.mode == "ssd":
            self.next_if_hit = self.v < p.thr_hit[self.a_hit]
            self.next_if_miss = self.v < p.thr_miss[self.a_miss]


def sample_batch(plan: Plan, batch_index: int, seq_ids: np.ndarray) -> BatchOutcomes:
    """Sample every step of one static batch until each sequence has its output length."""
    slots = len(seq_ids)
    remaining = plan.output_lens[seq_ids].copy()
    context = plan.prompt_lens[seq_ids].copy()
    hit = np.zeros(slots, dtype=bool)
    draws = _Draws(plan, batch_index, slots)
    rows: list[tuple[np.ndarray, ...]] = []
    ar, ssd = plan.mode == "ar", plan.mode == "ssd"
    t = 0
    while remaining.any():
        if t - draws.start >= CHUNK_STEPS:
            draws.refill()
        i = t - draws.start
        active = remaining > 0
        if ar:
            accepted = np.zeros(slots, dtype=np.int64)
        elif ssd:
            accepted = np.where(hit, draws.a_hit[i], draws.a_miss[i])
        else:
            accepted = draws.a_hit[i]
        emitted = np.minimum(accepted + 1, remaining)
        rows.append((active, hit & active, accepted * active, emitted, draws.v[i], context.copy()))
        remaining = remaining - emitted
        context = context + emitted
        if ssd:
            hit = np.where(hit, draws.next_if_hit[i], draws.next_if_miss[i])
        t += 1
    cols = [np.stack(c) for c in zip(*rows, strict=False)]
    return BatchOutcomes(seq_ids, *cols)
