"""Cost model: seconds for forward passes, link messages and the fast speculator (pure functions).

Everything here is arithmetic on a Profile's parameters; the simulator advances time only by
these numbers. Functions accept plain numbers or numpy arrays of equal shape (the fast engine
costs every step of a batch in one call). Imports numpy and the contract modules only; never
SimPy, torch or the executor.

Forward pass of ``batch`` sequences with ``tokens`` new tokens each over ``context`` tokens per
sequence (the new ones included; a mean when sequences differ)::

    fixed_s + max(weight_s + kv_s * batch * context, compute_s * batch * tokens)
            + token_s * batch * tokens + attn_s * batch * tokens * context

Message sizes follow DESIGN.md section 4 / REFERENCE.md 3.1: a request carries per sequence the
cache key (sequence id, accepted length, recovery token), the context length and the draft
temperature; a response carries per sequence a hit flag and k token ids, and at temperature > 0
the draft's distribution over the vocabulary at each of the k positions (verification needs q).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ssdsim.policy import Policy
from ssdsim.profile import ForwardLatency, LatencyGrid, LinkLatency, Profile

INT_BYTES = 8
REQUEST_INTS_PER_SEQ = 5  # key (seq, accepted_len, token), context length, draft temperature
MESSAGE_HEADER_BYTES = 4 * INT_BYTES  # command, batch, k, budget


def formula_s(lat: ForwardLatency, batch: Any, tokens: Any, context: Any) -> Any:
    """The module docstring's formula alone (no measured grid)."""
    bn = batch * tokens
    memory = lat.weight_s + lat.kv_s * batch * context
    compute = lat.compute_s * bn
    return lat.fixed_s + np.maximum(memory, compute) + lat.token_s * bn + lat.attn_s * bn * context


def _cell(axis: tuple[int, ...], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower index of the grid cell holding x (already inside the axis) and x's fraction across it."""
    a = np.asarray(axis, dtype=float)
    if len(a) == 1:
        return np.zeros(x.shape, dtype=np.int64), np.zeros(x.shape)
    i = np.clip(np.searchsorted(a, x, side="right") - 1, 0, len(a) - 2)
    return i, (x - a[i]) / (a[i + 1] - a[i])


def _clamp(grid: LatencyGrid, batch: Any, tokens: Any, context: Any) -> list[np.ndarray]:
    axes = (grid.batch, grid.tokens, grid.context)
    pts = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (batch, tokens, context)))
    return [np.clip(x, a[0], a[-1]) for x, a in zip(pts, axes, strict=True)]


def grid_s(grid: LatencyGrid, batch: Any, tokens: Any, context: Any) -> np.ndarray:
    """Multilinear interpolation of the measured seconds, at points clamped into the grid's range."""
    table = np.asarray(grid.seconds, dtype=float)
    pts = _clamp(grid, batch, tokens, context)
    cells = [_cell(a, x) for a, x in zip((grid.batch, grid.tokens, grid.context), pts, strict=True)]
    out = np.zeros(pts[0].shape)
    for corner in itertools.product((0, 1), repeat=3):
        weight = np.ones(pts[0].shape)
        index = []
        for (i, frac), c, size in zip(cells, corner, table.shape, strict=True):
            weight = weight * (frac if c else 1.0 - frac)
            index.append(np.minimum(i + c, size - 1))  # a one-point axis: weight 0 on corner 1
        out = out + weight * table[tuple(index)]
    return out


def forward_s(lat: ForwardLatency, batch: Any, tokens: Any, context: Any) -> Any:
    """Seconds of one forward pass; see the module docstring. Zero batch costs nothing.

    With a measured grid: inside its range the interpolated measurement; outside it, that of
    the nearest point of the range scaled by the formula's ratio between the two points.
    """
    t = formula_s(lat, batch, tokens, context)
    if lat.grid is not None:
        clamped = _clamp(lat.grid, batch, tokens, context)
        edge = formula_s(lat, *clamped)
        scale = np.where(edge > 0, t / np.where(edge > 0, edge, 1.0), 1.0)
        t = grid_s(lat.grid, *clamped) * scale
    if isinstance(t, np.ndarray) and t.ndim > 0:
        return np.where(np.asarray(batch) > 0, t, 0.0)
    return float(t) if batch > 0 else 0.0


def forwards_s(
    lat: ForwardLatency, batch: Any, tokens: Any, context0: Any, context_step: Any, count: int
) -> Any:
    """Total seconds of ``count`` forwards whose context grows by ``context_step`` each time.

    Forward ``i`` (0-based) sees ``context0 + i * context_step`` tokens (autoregressive drafting:
    step 1; tree decode: step M). Computed for all ``i`` at once (arrays broadcast).
    """
    context0 = np.asarray(context0)
    steps = np.arange(count).reshape((count,) + (1,) * context0.ndim)
    contexts = context0 + steps * context_step
    total = forward_s(lat, np.asarray(batch), tokens, contexts).sum(axis=0)
    return float(total) if np.ndim(total) == 0 else total


def link_s(link: LinkLatency, nbytes: Any) -> Any:
    """Seconds for one message of ``nbytes`` across the draft-target link."""
    return link.fixed_s + link.per_byte_s * nbytes


def request_bytes(batch: Any) -> Any:
    """Bytes of one speculation request for ``batch`` sequences."""
    return MESSAGE_HEADER_BYTES + batch * REQUEST_INTS_PER_SEQ * INT_BYTES


def response_bytes(batch: Any, k: int, vocab_size: int, dist_bytes: int, with_dists: bool) -> Any:
    """Bytes of one response: per sequence a hit flag and k token ids, plus k distributions if sampling."""
    per_seq = (1 + k) * INT_BYTES + (k * vocab_size * dist_bytes if with_dists else 0)
    return MESSAGE_HEADER_BYTES + batch * per_seq


def fast_speculator_s(profile: Profile, batch: Any) -> Any:
    """Seconds of the fast fallback speculator for ``batch`` missed sequences (0 when none)."""
    t = profile.fast_s + profile.fast_seq_s * batch
    if isinstance(t, np.ndarray):
        return np.where(np.asarray(batch) > 0, t, 0.0)
    return float(t) if batch > 0 else 0.0


def step_overhead_s(profile: Profile, batch: Any, mode: str | None = None) -> Any:
    """Host work on the target's critical path per decode step (sampling, verification, bookkeeping).

    ``mode`` (ar, sd, ssd) selects ``Profile.host_by_batch[mode]`` (interpolated in B) or else
    ``Profile.mode_overheads[mode]`` when the profile has them.
    """
    table = profile.host_by_batch.get(mode or "")
    if table:
        return by_batch(table, batch, 0.0)
    fixed, per_seq = profile.mode_overheads.get(
        mode or "", (profile.step_overhead_s, profile.seq_overhead_s)
    )
    return fixed + per_seq * batch


def sampling_s(profile: Profile, batch: Any, tokens: int, sampling: bool) -> Any:
    """Host work of sampling verification (T > 0) over ``batch`` x ``tokens`` scored rows:
    ``verify_sample_step_s`` per step with a row plus ``verify_sample_row_s`` per row (0 when
    greedy)."""
    if not sampling:
        return 0.0
    fixed = np.where(np.asarray(batch) > 0, profile.verify_sample_step_s, 0.0)
    out = fixed + profile.verify_sample_row_s * np.asarray(batch) * tokens
    return float(out) if np.ndim(out) == 0 else out


def ar_step_s(profile: Profile, batch: Any, context: Any, sampling: bool = False) -> Any:
    """One AR step: a target forward of one token per sequence plus the step overhead (plus
    the sampling's host work when ``sampling``)."""
    return (
        forward_s(profile.target, batch, 1, context + 1)
        + step_overhead_s(profile, batch, "ar")
        + sampling_s(profile, batch, 1, sampling)
    )


def verify_s(
    profile: Profile, batch: Any, k: int, context: Any, mode: str = "sd", sampling: bool = False
) -> Any:
    """Target verification of k+1 tokens per sequence plus the step overhead of ``mode`` (plus,
    when ``sampling``, the sampling rule's host work: SD and SSD verify with the same kernel;
    SSD's unpacking of the draft's distributions is ``ssd_dist_row_s``)."""
    return (
        forward_s(profile.target, batch, k + 1, context + k + 1)
        + step_overhead_s(profile, batch, mode)
        + sampling_s(profile, batch, k + 1, sampling)
    )


def draft_chain_s(profile: Profile, batch: Any, k: int, context: Any) -> Any:
    """k autoregressive draft forwards of one token per sequence (SD drafting, jit on a miss)."""
    return forwards_s(profile.draft, batch, 1, context + 1, 1, k)


def jit_s(profile: Profile, batch: Any, k: int, context: Any, sampling: bool = False) -> Any:
    """SSD's jit decoding of ``batch`` missed rows: the chain forwards times
    ``Profile.jit_scale``, plus ``Profile.jit_row_s`` per row and ``Profile.jit_fixed_s``
    (0 seconds without a missed row). When ``sampling`` (T > 0): all of it times
    ``Profile.jit_sampling_scale``, or where that is unset the chain's part times
    ``Profile.draft_sampling_scale``."""
    rows = np.asarray(batch)
    chain = draft_chain_s(profile, batch, k, context) * profile.jit_scale
    rest = np.where(rows > 0, profile.jit_fixed_s + profile.jit_row_s * rows, 0.0)
    if sampling and profile.jit_sampling_scale > 0:
        out = (chain + rest) * profile.jit_sampling_scale
    else:
        out = chain * (profile.draft_sampling_scale if sampling else 1.0) + rest
    return float(out) if np.ndim(out) == 0 else out


def jit_answer_s(profile: Profile, batch: Any) -> Any:
    """``Profile.jit_answer_s`` at ``batch`` rows (0 seconds for an empty batch)."""
    out = np.where(np.asarray(batch) > 0, by_batch(profile.jit_answer_s, batch, 0.0), 0.0)
    return float(out) if np.ndim(out) == 0 else out


def by_batch(table: dict[int, float], batch: Any, default: float) -> Any:
    """A per-batch-size table at ``batch``: linear between its sizes, the nearest one's beyond."""
    if not table:
        return default
    out = np.interp(np.asarray(batch, dtype=float), list(table), list(table.values()))
    return float(out) if np.ndim(out) == 0 else out


def sd_draft_s(profile: Profile, batch: Any, k: int, context: Any) -> Any:
    """SD's drafting per step: the k chain forwards times ``Profile.sd_draft_scales`` at B,
    plus ``Profile.sd_draft_fixed_s`` (0 seconds for an empty batch)."""
    fixed = np.where(np.asarray(batch) > 0, profile.sd_draft_fixed_s, 0.0)
    scale = by_batch(profile.sd_draft_scales, batch, 1.0)
    out = draft_chain_s(profile, batch, k, context) * scale + fixed
    return float(out) if np.ndim(out) == 0 else out


def prespec_s(profile: Profile, batch: Any, k: int, budget: int, context: Any) -> Any:
    """SSD pre-speculation: a glue forward of k+1 tokens, then k tree forwards of ``budget`` tokens.

    Context: the glue block sits after the committed tokens; tree layer d adds ``budget`` scratch
    slots (REFERENCE.md 3.4), so tree forward d sees context + (k+1) + (d+1)*budget tokens.
    With a measured tree-step model (``Profile.draft_tree``: batch, branches per sequence and
    the trunk positions each branch may read) every tree forward reads the trunk with the glue
    block, context + k + 1 positions (its chain's d+1 tokens sit in a separate small buffer).
    """
    glue, tree = prespec_parts_s(profile, batch, k, budget, context)
    return glue + tree


def prespec_parts_s(profile: Profile, batch: Any, k: int, budget: int, context: Any) -> Any:
    """(glue forward, all k tree forwards) of ``prespec_s``, apart (the doorbell cuts the tree).
    The glue carries ``Profile.prespec_glue_s`` at B (0 seconds for an empty batch)."""
    extra = np.where(np.asarray(batch) > 0, by_batch(profile.prespec_glue_s, batch, 0.0), 0.0)
    glue = forward_s(profile.draft, batch, k + 1, context + k + 1) + extra
    glue = float(glue) if np.ndim(glue) == 0 else glue
    if profile.draft_tree is not None:
        tree = forwards_s(profile.draft_tree, batch, budget, context + k + 1, 0, k)
    else:
        tree = forwards_s(profile.draft, batch, budget, context + k + 1 + budget, budget, k)
    return glue, tree


def doorbell_depth(glue_s: Any, tree_step_s: Any, window_s: Any, k: int, phase: Any = None) -> Any:
    """Tree depth reached when the next request is sent ``window_s`` after the glue starts.

    With mean step times: the first tree step always runs; step d (2..k) starts only if the
    request has not been sent yet: depth = clip(ceil((window - glue) / step), 1, k). With
    ``phase`` (``doorbell_busy_s``: the tree runs on ``phase`` of a step past the request), the
    steps that fit in that time, rounded: clip(round(room + phase), 1, k), so that the depth
    varies from step to step as real steps' times do (loop 13, SSD k=4 at B=1: 3 or 4, mean
    3.37, where mean costs gave 3 every time).
    """
    room = (np.asarray(window_s, dtype=float) - glue_s) / np.maximum(tree_step_s, 1e-12)
    if phase is None:
        return np.clip(np.ceil(room), 1, k).astype(np.int64)
    return np.clip(np.floor(room + np.asarray(phase, dtype=float) + 0.5), 1, k).astype(np.int64)


def doorbell_busy_s(glue_s: Any, tree_step_s: Any, window_s: Any, k: int, phase: Any) -> Any:
    """Seconds the draft pre-speculates (glue + tree) when the doorbell rings ``window_s`` after
    the glue starts and the tree stops at the step boundary after it.

    Tree steps do not take their mean time each, so the request lands at any point of the step
    in progress: it waits ``phase`` (uniform in [0, 1)) of a step for the boundary, not the
    fixed remainder mean costs would give. At least the glue and one step; at most the whole
    tree (the request then waits for nothing). ``doorbell_depth`` with the same ``phase`` gives
    the depth reached: on average as many steps as this time holds.
    """
    step = np.maximum(tree_step_s, 1e-12)
    busy = np.asarray(window_s, dtype=float) - glue_s + np.asarray(phase, dtype=float) * step
    return glue_s + np.clip(busy, step, step * k)


def cache_bytes(profile: Profile, policy: Policy, batch: int) -> int:
    """Draft-device memory of one round's speculation cache: B*M branches of k distributions and KV."""
    branches = batch * policy.budget
    dists = branches * policy.k * profile.vocab_size * profile.dist_bytes
    kv = branches * policy.k * profile.draft_kv_bytes_per_token
    return int(dists + kv)
