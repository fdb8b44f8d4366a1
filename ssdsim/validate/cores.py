"""SSD's two cores: how much a pass's tokens/s owes to each core's speed.

SSD's target and draft run on two cores (two devices) whose speeds drift apart: a pass's target
probe says nothing of the draft's core. An SSD run with ``--speed-probe`` times both
(``executor.probe``); against the calibration traces' medians that gives each core's slowdown
``s_t`` and ``s_d`` (1.1: 10% slower than when the profile was fitted). How much each one moves
the pass depends on the policy: a jit policy at B=1 waits on the draft at every miss, a fast one
mostly not. ``elasticities`` asks the simulator: the point simulated again with every target-core
cost (forwards, host work, the fast speculator) and then every draft-core cost (forwards, tree,
tree sampling; SD's drafting too, though SD runs it on the target's core) ``1 + STEP`` times as long, on the same seeds; ``e = -ln(ratio) / ln(1 + STEP)``
for each. A pass then reads ``tokens/s x s_t^e_t x s_d^e_d`` at the calibration's speeds
(``ssdsim.validate.compare``). The link is left as is on both sides. Never torch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ssdsim.calibrate.trace_costs import scaled
from ssdsim.policy import Policy
from ssdsim.profile import Profile
from ssdsim.simulator import simulate
from ssdsim.workload import Workload

STEP = 0.1  # the slowdown each core is simulated at


def scaled_cores(profile: Profile, target: float = 1.0, draft: float = 1.0) -> Profile:
    """``profile`` with SSD's target-core costs ``target`` times and its draft-core costs
    ``draft`` times as long (the link unchanged)."""
    t, d = target, draft
    return dataclasses.replace(
        profile,
        target=scaled(profile.target, t),
        step_overhead_s=profile.step_overhead_s * t,
        seq_overhead_s=profile.seq_overhead_s * t,
        mode_overheads={m: (a * t, b * t) for m, (a, b) in profile.mode_overheads.items()},
        host_by_batch={
            m: {b: s * t for b, s in by.items()} for m, by in profile.host_by_batch.items()
        },
        fast_s=profile.fast_s * t,
        fast_seq_s=profile.fast_seq_s * t,
        ssd_dist_row_s=profile.ssd_dist_row_s * t,
        verify_sample_row_s=profile.verify_sample_row_s * t,
        draft=scaled(profile.draft, d),
        draft_tree=scaled(profile.draft_tree, d) if profile.draft_tree is not None else None,
        tree_sample_row_s=profile.tree_sample_row_s * d,
        jit_fixed_s=profile.jit_fixed_s * d,  # (jit_answer_s: the link's)
        sd_draft_fixed_s=profile.sd_draft_fixed_s * d,  # SD's drafting (the draft's work)
    )


def _tokens_per_s(profile: Profile, policy: Policy, workload: Workload, seeds: int) -> float:
    runs = [simulate(profile, policy, workload, seed=workload.seed + i) for i in range(seeds)]
    return sum(r.tokens_per_s for r in runs) / len(runs)


def elasticities(
    profile: Profile, policy: Policy, workload: Workload, seeds: int, base_tokens_per_s: float
) -> dict[str, Any]:
    """How much slower (log) the point runs per (log) slowdown of each core: ``target`` and
    ``draft``, each about 0..1 (their sum near 1 when the link is small)."""
    out: dict[str, Any] = {}
    for core in ("target", "draft"):
        slow = scaled_cores(profile, **{core: 1.0 + STEP})
        tps = _tokens_per_s(slow, policy, workload, seeds)
        out[core] = -math.log(tps / base_tokens_per_s) / math.log(1.0 + STEP)
    return out


def core_speed(elastic: dict[str, float], target_speed: float, draft_speed: float) -> float:
    """The factor a pass's tokens/s is multiplied by to read at the calibration's speeds."""
    return target_speed ** elastic["target"] * draft_speed ** elastic["draft"]
