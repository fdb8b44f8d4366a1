"""What verification does to each sequence of a batch at each step, sampled from seeded streams.

Outcomes do not depend on timing, so they are drawn first (vectorised over chunks of steps and
the batch) and both engines replay them. Per (step, slot) one uniform ``u`` (acceptance stream)
gives the accepted length by inverse CDF, A = min{j : u < P(A <= j)}, so a higher acceptance
never lowers A for the same u; one uniform ``v`` (rank stream) decides the next request's cache
hit, v < c_A(F_A), and (when tracing) the bonus rank. Uniforms are drawn in fixed chunks of steps
per slot, so step t of slot s always uses the same numbers whatever the policy (common random
numbers).

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
    """Arrays of shape (steps, slots) for one static batch; inactive entries are zero/False.

    hit: the step's request hit the cache (SSD); accepted: A; emitted: tokens appended;
    rank_u: the rank-stream uniform (bonus rank when tracing); context: tokens before the step.
    """

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


def _hit_chain(first: list[bool], if_hit: np.ndarray, if_miss: np.ndarray) -> np.ndarray:
    """Hit state per step and slot: state[t+1] = if_hit[t] if state[t] else if_miss[t]."""
    steps, slots = if_hit.shape
    out = np.empty((steps + 1, slots), dtype=bool)
    h_rows, m_rows = if_hit.T.tolist(), if_miss.T.tolist()
    for s in range(slots):
        state, col, hits, misses = first[s], [first[s]], h_rows[s], m_rows[s]
        for t in range(steps):
            state = hits[t] if state else misses[t]
            col.append(state)
        out[:, s] = col
    return out


def _chunk(
    plan: Plan, u: np.ndarray, v: np.ndarray, hit0: list[bool]
) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Accepted lengths and hit states of one chunk of steps, and the hit state after it."""
    if plan.mode == "ar":
        return np.zeros(u.shape, dtype=np.int64), np.zeros(u.shape, dtype=bool), hit0
    a_hit = np.searchsorted(plan.cdf_hit, u, side="right")
    if plan.mode == "sd":
        return a_hit, np.zeros(u.shape, dtype=bool), hit0
    a_miss = np.searchsorted(plan.cdf_miss, u, side="right")
    chain = _hit_chain(hit0, v < plan.thr_hit[a_hit], v < plan.thr_miss[a_miss])
    hit = chain[:-1]
    return np.where(hit, a_hit, a_miss), hit, chain[-1].tolist()


def sample_batch(plan: Plan, batch_index: int, seq_ids: np.ndarray) -> BatchOutcomes:
    """Sample every step of one static batch until each sequence has its output length."""
    slots = len(seq_ids)
    acc_rng = stream(plan.seed, "accept", batch_index)
    rank_rng = stream(plan.seed, "rank", batch_index)
    remaining = plan.output_lens[seq_ids].copy()
    context = plan.prompt_lens[seq_ids].copy()
    hit0 = [False] * slots
    parts: list[tuple[np.ndarray, ...]] = []
    while remaining.any():
        u = acc_rng.random((CHUNK_STEPS, slots))
        v = rank_rng.random((CHUNK_STEPS, slots))
        accepted, hit, hit0 = _chunk(plan, u, v, hit0)
        wanted = accepted + 1
        before = np.cumsum(wanted, axis=0) - wanted  # tokens the chunk emitted before each step
        active = before < remaining
        emitted = np.clip(remaining - before, 0, wanted)
        ctx = context + np.cumsum(emitted, axis=0) - emitted
        parts.append((active, hit & active, accepted * active, emitted, v, ctx))
        remaining = remaining - emitted.sum(axis=0)
        context = context + emitted.sum(axis=0)
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    used = int(cols[0].any(axis=1).sum())
    return BatchOutcomes(seq_ids, *(c[:used] for c in cols))
