"""Seconds of every forward and message of every step of one batch (vectorised over steps).

All numbers come from ``ssdsim.latency``; this module only decides who is in each forward:
the active sequences (B; every row of the static batch with ``Profile.static_batch_rows``), the
missed ones (SSD), and their mean context before the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ssdsim import latency as lat
from ssdsim.sim.outcomes import BatchOutcomes
from ssdsim.sim.plan import Plan, stream


@dataclass(frozen=True)
class StepCosts:
    """Per-step seconds as Python lists (the engines walk them step by step).

    verify: target forward + step overhead; draft: SD drafting or SSD jit on the critical path;
    fast: the fast speculator (SSD, missed rows); prespec: SSD glue + tree decode;
    link_req / link_resp: SSD request and response messages; depth: SSD, the tree depth each
    step's pre-speculation reached (k unless ``Profile.doorbell`` cut it short).
    """

    verify: list[float]
    draft: list[float] = field(default_factory=list)
    fast: list[float] = field(default_factory=list)
    prespec: list[float] = field(default_factory=list)
    link_req: list[float] = field(default_factory=list)
    link_resp: list[float] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)


def _mean_context(ctx: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = mask.sum(axis=1)
    return n, (ctx * mask).sum(axis=1) / np.maximum(n, 1)


def step_costs(plan: Plan, out: BatchOutcomes, batch_index: int = 0) -> StepCosts:
    """The costs of each step of one batch (``batch_index``: its phase stream) under the plan's
    mode."""
    prof, k = plan.profile, plan.policy.k
    n, ctx = _mean_context(out.context, out.active)
    if prof.static_batch_rows:  # finished rows stay in the forwards until the batch ends
        n = np.where(n > 0, out.active.shape[1], 0)
    if plan.mode == "ar":
        return StepCosts(verify=lat.ar_step_s(prof, n, ctx, plan.with_dists).tolist())
    verify = lat.verify_s(prof, n, k, ctx, plan.mode, plan.with_dists).tolist()
    ds = prof.draft_sampling_scale if plan.with_dists else 1.0  # the draft samples at T > 0
    if plan.mode == "sd":
        return StepCosts(verify=verify, draft=(lat.sd_draft_s(prof, n, k, ctx) * ds).tolist())
    if plan.with_dists:  # the target takes k draft distributions per row the draft proposed for
        rows = n if plan.miss_kind == "jit" else (out.active & out.hit).sum(axis=1)
        verify = (np.asarray(verify) + prof.ssd_dist_row_s * rows * k).tolist()
    n_miss, ctx_miss = _mean_context(out.context, out.active & ~out.hit)
    zeros = np.zeros(len(n))
    jit_s = lat.jit_s(prof, n_miss, k, ctx_miss, plan.with_dists)
    jit = jit_s if plan.miss_kind == "jit" else zeros
    answer = (  # the target waits for jit's answer: longer than the message alone
        np.where(n_miss > 0, lat.jit_answer_s(prof, n), 0.0) if plan.miss_kind == "jit" else zeros
    )
    fast = lat.fast_speculator_s(prof, n_miss) if plan.miss_kind == "fast" else zeros
    resp_bytes = lat.response_bytes(n, k, prof.vocab_size, prof.dist_bytes, plan.with_dists)
    link_resp = lat.link_s(prof.link, resp_bytes) + answer
    glue, tree = lat.prespec_parts_s(prof, n, k, plan.policy.budget, ctx)
    if plan.with_dists:  # every branch row samples at each of the k tree steps
        tree = tree + prof.tree_sample_row_s * n * plan.policy.budget * k
    depth = np.full(len(n), k, dtype=np.int64)
    prespec = glue + tree
    if prof.doorbell:  # the next request is sent when this step's verification ends
        window = link_resp + np.asarray(fast) + np.asarray(verify)
        phase = stream(plan.seed, "phase", batch_index).random(len(n))
        depth = lat.doorbell_depth(glue, tree / k, window, k, phase)
        prespec = lat.doorbell_busy_s(glue, tree / k, window, k, phase)
    return StepCosts(
        verify=verify,
        draft=np.asarray(jit, dtype=float).tolist(),
        fast=np.asarray(fast, dtype=float).tolist(),
        prespec=np.asarray(prespec, dtype=float).tolist(),
        link_req=lat.link_s(prof.link, lat.request_bytes(n)).tolist(),
        link_resp=np.asarray(link_resp, dtype=float).tolist(),
        depth=depth.tolist(),
    )
