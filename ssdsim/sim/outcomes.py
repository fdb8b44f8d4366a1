"""What verification does to each sequence of a batch at each step, sampled from seeded streams.

Outcomes do not depend on timing, so they are drawn first (vectorised over chunks of steps and
the batch) and both engines replay them. Per (step, slot) one uniform ``u`` (acceptance stream)
gives the accepted length by inverse CDF, A = min{j : u < P(A <= j)}, so a higher acceptance
never lowers A for the same u; one uniform ``v`` (rank stream) decides the next request's cache
hit, v < c_A(F_A), and (when tracing) the bonus rank. Uniforms are drawn in fixed chunks of steps
per slot, so step t of slot s always uses the same numbers whatever the policy (common random
numbers).

Sequences may differ (``ChancePoint.seq_spread``; under the run model ``run_spread``): each
then has its own acceptance CDFs (``Plan.cdfs``, ``Plan.run_seq``), still inverted with the
same uniforms.

SSD state per sequence: whether its current request hit. Step 0 of a batch always misses (the
cache is empty after prefill). A hit row's proposals follow ``alpha`` and its next tree uses
``fan_out``; a missed row's follow the fallback's acceptance and ``fan_out_miss``.

Sequences may also differ in coverage (``Plan.cov_seq``, run model only): each then has its own
hit thresholds and rank bounds (``Plan.thresholds``), compared with the same v.

Run lengths (``Plan.run_hit``, when the chance has run-length tables): a draft proposal's
acceptance depends on how many draft tokens in a row the target accepted before it, so each
slot carries its run from step to step (a rejection ends it; a fully accepted step's bonus of
rank 1, v < c_bonus(1), carries it on; a fast speculator's row ends it) and the step's A is
drawn from the CDF of its starting run. Steps are then walked one by one (``_run_chunk``) with
the same uniforms. With ``Plan.run_rank`` (``fast_rank``) an SSD draft row that starts a run
(a fast fallback's row) takes its first proposal's rate from the rank bucket of the bonus
before it, read off the step before's v against its coverage (v < c_A(1): rank 1;
c_A(1) <= v < c_A(3): ranks 2-3; and so on).

Doorbell (``Profile.doorbell``): the tree that serves step t's hits reached ``depth[t-1]``
tokens (``ssdsim.sim.costs``), so a hit row proposes that many: A = min(A, depth), and when
all of them are accepted the next key's token is a bonus drawn at glue index A with no token
excluded (the bonus coverage, at fan-out F_A). The depths come from a first pass's costs (the
simulator samples twice), so outcomes still never depend on timing within a pass.

Replay (``Plan.replay``, T = 0): each slot walks its sequence's greedy text instead
(``_replay_chunk``): its next row starts at a text position (1: the prefill emitted text[0]),
the replay gives the row's accepted length and the bonus rank, and the next request hits when
that rank is within the row's fan-out at the accepted length. The uniforms are still drawn (and
unused), so the streams stay aligned with sampled runs.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

from ssdsim.replay import FIRST_POSITION
from ssdsim.sim.plan import Plan, stream

CHUNK_STEPS = 64


@dataclass(frozen=True)
class BatchOutcomes:
    """Arrays of shape (steps, slots) for one static batch; inactive entries are zero/False.

    hit: the step's request hit the cache (SSD); accepted: A; emitted: tokens appended;
    rank_u: the rank-stream uniform (bonus rank when tracing); context: tokens before the step;
    proposed: proposals verified (k, or a hit's tree depth under the doorbell).
    """

    seq_ids: np.ndarray
    active: np.ndarray
    hit: np.ndarray
    accepted: np.ndarray
    emitted: np.ndarray
    rank_u: np.ndarray
    context: np.ndarray
    proposed: np.ndarray

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


def _inverse_cdf(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A = min{j : u < P(A <= j)} per (step, slot); cdf is (k+1,) or (slots, k+1)."""
    if cdf.ndim == 1:
        return np.searchsorted(cdf, u, side="right")
    return (cdf[None, :, :] <= u[:, :, None]).sum(axis=2)


def _chunk(
    plan: Plan,
    u: np.ndarray,
    v: np.ndarray,
    hit0: list[bool],
    cap: np.ndarray,
    cdfs: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Accepted lengths and hit states of one chunk of steps, and the hit state after it.

    cap: (steps, 1) proposals of a hit row at each step (k without the doorbell); cdfs: the
    after-hit and missed-row acceptance CDFs (shared, or one row per slot).
    """
    if plan.mode == "ar":
        return np.zeros(u.shape, dtype=np.int64), np.zeros(u.shape, dtype=bool), hit0
    a_hit = _inverse_cdf(cdfs[0], u)
    if plan.mode == "sd":
        return a_hit, np.zeros(u.shape, dtype=bool), hit0
    a_hit = np.minimum(a_hit, cap)
    thr_hit = np.where(a_hit >= cap, plan.thr_hit_cut[a_hit], plan.thr_hit[a_hit])
    a_miss = _inverse_cdf(cdfs[1], u)
    chain = _hit_chain(hit0, v < thr_hit, v < plan.thr_miss[a_miss])
    hit = chain[:-1]
    return np.where(hit, a_hit, a_miss), hit, chain[-1].tolist()


@dataclass
class _Slot:
    """One slot's state between chunks (run model): hit state, run length, 1 + the bucket
    of the bonus rank that ended the run (0: unknown, e.g. after a fast row or the prefill) and
    the context of a fast row next (``Plan.fast_before``, ``FAST_CONTEXTS``)."""

    hit: bool = False
    run: int = 0
    rank: int = 0
    before: str = "first"


def _run_step(plan: Plan, rows: tuple, slot: _Slot, u: float, v: float, cap: int) -> int:
    """One step of one slot under the run model: its A, with ``slot`` moved to the next step.

    rows: the after-hit CDFs by run, the jit-miss CDFs by run (None: fast misses), this
    sequence's CDF of a fast speculator's row, the CDFs by the rank bucket before of draft and
    fast rows (None: by kind; ``Plan.run_rank``, ``fast_rank``), a fast row's CDFs by the row
    before (``Plan.fast_before``; a missing context: by rank) and this sequence's thresholds
    (``Plan.thresholds``: hit thresholds, the run's bonus chance, the bucket edges' coverage
    after a hit and on a missed row)."""
    first, miss, miss_pos, by_rank, fast_rank, by_before, th = rows
    thr_hit, thr_hit_cut, thr_miss, bonus_run, bounds, bounds_miss = th
    ssd = plan.mode == "ssd"
    k = plan.policy.k
    bucket = slot.rank - 1  # -1: unknown

    def draft_row(by_run: list) -> list:  # a draft row's CDF: by the rank before at run 0
        if by_rank is not None and slot.run == 0 and bucket >= 0:
            return by_rank[min(bucket, len(by_rank) - 1)]
        return by_run[min(slot.run, len(by_run) - 1)]

    nomatch = False
    if not ssd or slot.hit:
        a = min(bisect_right(draft_row(first), u), cap)
        full, draft_row, edges = a >= cap, True, bounds
        thr = (thr_hit_cut[a] if full else thr_hit[a]) if ssd else 0.0
    else:
        if miss is not None:
            row = draft_row(miss)
        elif fast_rank is not None and bucket >= 0 and slot.before == "draft":
            row = fast_rank[min(bucket, len(fast_rank) - 1)]
        elif by_before.get(slot.before) is not None:
            row = by_before[slot.before]
        elif slot.before == "nomatch" and by_before.get("part") is not None:
            row = by_before["part"]
        elif fast_rank is not None and bucket >= 0:
            row = fast_rank[min(bucket, len(fast_rank) - 1)]
        else:
            row = miss_pos
        a = bisect_right(row, u)
        full, draft_row, edges = a >= k, miss is not None, bounds_miss
        thr = thr_miss[a]
        # a row that accepted nothing found no n-gram match at all with the context's chance
        # (u / P(A = 0) is uniform and independent of A there)
        nomatch = a == 0 and u < row[0] * plan.fast_nomatch.get(slot.before, 0.0)
    fast = ssd and not slot.hit and miss is None
    if fast and nomatch:
        slot.before = "nomatch"
    else:
        slot.before = ("full" if full else "part") if fast else "draft"
    slot.run = slot.run + a + 1 if draft_row and full and v < bonus_run else 0
    if edges is not None:
        slot.rank = bisect_right(edges[k if full else a], v) + 1 if slot.run == 0 else 0
    slot.hit = ssd and v < thr
    return a


def _run_chunk(
    plan: Plan, u: np.ndarray, v: np.ndarray, slots: list[_Slot], cap: np.ndarray, seq_ids
) -> tuple[np.ndarray, np.ndarray]:
    """Accepted lengths and hit states of one chunk of steps under the run model."""
    steps, n = u.shape
    accepted = np.zeros((steps, n), dtype=np.int64)
    hit = np.zeros((steps, n), dtype=bool)
    caps = cap[:, 0].tolist() if plan.mode == "ssd" else [plan.policy.k] * steps
    first = plan.run_hit.tolist()
    miss = plan.run_miss.tolist() if plan.run_miss is not None else None
    pos = plan.cdfs(seq_ids)[1]
    by_rank, fast_rank = (
        t.tolist() if t is not None else None for t in (plan.run_rank, plan.fast_rank)
    )
    by_before = {c: t.tolist() for c, t in (plan.fast_before or {}).items()}
    for s in range(n):
        seq = int(seq_ids[s])
        if plan.run_seq is not None:
            first, miss, by_rank = plan.run_seq[seq]
        rows = (first, miss, pos[s].tolist(), by_rank, fast_rank, by_before, plan.thresholds(seq))
        us, vs, slot = u[:, s].tolist(), v[:, s].tolist(), slots[s]
        for t in range(steps):
            hit[t, s] = slot.hit
            accepted[t, s] = _run_step(plan, rows, slot, us[t], vs[t], caps[t])
    return accepted, hit


@dataclass
class _ReplaySlot:
    """One slot's state under replay: its request hit, and the text position of its next row."""

    hit: bool = False
    pos: int = FIRST_POSITION


def _replay_chunk(
    plan: Plan, slots: list[_ReplaySlot], cap: np.ndarray, seq_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Accepted lengths and hit states of one chunk of steps, read off the replay's texts."""
    replay = plan.replay
    assert replay is not None
    steps, n = cap.shape[0], len(seq_ids)
    accepted = np.zeros((steps, n), dtype=np.int64)
    hit = np.zeros((steps, n), dtype=bool)
    k, ssd = plan.policy.k, plan.mode == "ssd"
    miss_by = "fast" if plan.miss_kind == "fast" else "draft"
    caps = cap[:, 0].tolist()
    for s in range(n):
        seq, slot = int(seq_ids[s]), slots[s]
        for t in range(steps):
            hit[t, s] = slot.hit
            if plan.mode == "ar":
                slot.pos += 1
                continue
            if ssd and slot.hit:
                row = replay.row(seq, slot.pos, int(caps[t]), "draft")
                fans = plan.policy.fan_out
            else:
                row = replay.row(seq, slot.pos, k, miss_by if ssd else "draft")
                fans = plan.policy.fan_out_miss
            accepted[t, s] = row.accepted
            slot.pos += row.accepted + 1
            slot.hit = ssd and row.hits_next(fans)
    return accepted, hit


def _caps(plan: Plan, depth: list[int] | None, first: int) -> np.ndarray:
    """(CHUNK_STEPS, 1) proposals of a hit row at steps first.. : depth of the step before."""
    k = plan.policy.k
    if not depth:
        return np.full((CHUNK_STEPS, 1), k, dtype=np.int64)
    before = np.clip(np.arange(first - 1, first - 1 + CHUNK_STEPS), 0, len(depth) - 1)
    return np.asarray(depth, dtype=np.int64)[before][:, None]


def sample_batch(
    plan: Plan, batch_index: int, seq_ids: np.ndarray, depth: list[int] | None = None
) -> BatchOutcomes:
    """Sample every step of one static batch until each sequence has its output length.

    depth: SSD tree depth reached at each step (doorbell; the last repeats); None: k.
    """
    slots = len(seq_ids)
    acc_rng = stream(plan.seed, "accept", batch_index)
    rank_rng = stream(plan.seed, "rank", batch_index)
    remaining = plan.output_lens[seq_ids].copy()
    context = plan.prompt_lens[seq_ids].copy()
    hit0 = [False] * slots
    parts: list[tuple[np.ndarray, ...]] = []
    first = 0
    cdfs = plan.cdfs(seq_ids)
    if plan.cdf_hit_seq is None:
        cdfs = (plan.cdf_hit, plan.cdf_miss)
    run_slots = [_Slot() for _ in range(slots)]
    replay_slots = [_ReplaySlot() for _ in range(slots)]
    while remaining.any():
        u = acc_rng.random((CHUNK_STEPS, slots))
        v = rank_rng.random((CHUNK_STEPS, slots))
        cap = _caps(plan, depth, first)
        if plan.replay is not None:
            accepted, hit = _replay_chunk(plan, replay_slots, cap, seq_ids)
        elif plan.run_hit is not None:
            accepted, hit = _run_chunk(plan, u, v, run_slots, cap, seq_ids)
        else:
            accepted, hit, hit0 = _chunk(plan, u, v, hit0, cap, cdfs)
        proposed = np.where(hit, cap, plan.policy.k)
        first += CHUNK_STEPS
        wanted = accepted + 1
        before = np.cumsum(wanted, axis=0) - wanted  # tokens the chunk emitted before each step
        active = before < remaining
        emitted = np.clip(remaining - before, 0, wanted)
        ctx = context + np.cumsum(emitted, axis=0) - emitted
        parts.append((active, hit & active, accepted * active, emitted, v, ctx, proposed))
        remaining = remaining - emitted.sum(axis=0)
        context = context + emitted.sum(axis=0)
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    used = int(cols[0].any(axis=1).sum())
    return BatchOutcomes(seq_ids, *(c[:used] for c in cols))
