"""Cost calibration from SSD traces: what running the two devices at once adds, and sampling.

SSD runs the target's verification while the draft computes beside it, and the two slow each
other down (shared caches and memory bandwidth); requests and responses add host work. From
the executor's SSD traces, after the forwards were scaled (``trace_costs``):

- SSD host work per step (``Profile.mode_overheads["ssd"]``): a full-batch step, start to next
  start, minus the modelled target forward (k+1 tokens), the draft's time on the critical path
  (``draft_s``: jit or the fast speculator), the target's wait for the draft (``wait_s``) and
  the modelled link messages. It holds the slower verification and the message handling.
- SSD host work per draft distribution at T > 0 (``Profile.ssd_dist_row_s``): the host work
  of steps at T > 0 beyond the greedy fit at their batch size and the sampling verification
  AR and SD steps paid (``Profile.verify_sample_step_s``, ``verify_sample_row_s``; the same
  kernel), per distribution received (k per row whose proposals came from the draft: hits,
  and jit's misses); then the host work per step is fitted on greedy traces only (when there
  are any);
- jit decoding (``Profile.jit_scale``, ``jit_fixed_s``, ``jit_row_s``): over the steps of
  greedy SSD jit traces that had missed rows, grouped by (k, missed rows), the cells' median
  measured seconds against their median modelled draft chain, ``scale x chain + fixed +
  per_row x rows`` by non-negative least squares weighted by the steps per cell (``fit_jit``);
  at T > 0 one scale on the whole of it (``Profile.jit_sampling_scale``) from the SSD jit
  traces at T > 0;
- jit's answer (``Profile.jit_answer_s``, per batch size): on greedy SSD jit traces, the
  link on the critical path of steps the draft answered beyond that of steps served from the
  cache alone at the same B (the host work then leaves it out of answered steps);
- the glue (``Profile.prespec_glue_s``, per batch size): per SSD trace, the run summary's mean
  glue seconds beyond the draft's modelled forward of k+1 tokens; the median per B;
- draft tree scales (multiply ``Profile.draft_tree`` by batch and branches per sequence): per
  greedy SSD trace, the run summary's mean tree seconds per pre-speculation over the model's
  at the mean depth reached; the median per (B, M).
- sampling scales, the draft's time at T > 0 over T = 0: ``Profile.draft_sampling_scale`` from
  SD's drafting per step (same B and k); ``Profile.tree_sample_row_s``, seconds per branch row
  and tree step, from SSD's tree time per step at T > 0 beyond the same tree's greedy
  (beyond the greedy model's where no tree ran at both).

Only executor traces count (simulator traces run on the profile's own clock). Never torch.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from scipy.stats import trim_mean

from ssdsim import latency as lat
from ssdsim.calibrate.latency_fit import OverheadFit, fit_overhead
from ssdsim.calibrate.trace_costs import _prompt_lens, scaled_by_cells
from ssdsim.profile import Profile
from ssdsim.trace import StepRecord, Trace


@dataclass(frozen=True)
class SsdCosts:
    """What the SSD traces say (None: no trace to say it)."""

    overhead: OverheadFit | None
    tree_scales: dict[tuple[int, int], float]
    sampling_scale: float | None
    tree_sample_row_s: float | None
    jit_scale: float | None = None
    jit_fixed_s: float | None = None
    jit_row_s: float | None = None
    jit_sampling_scale: float | None = None
    jit_answer_s: dict[int, float] = dataclasses.field(default_factory=dict)
    dist_row_s: float | None = None
    prespec_glue_s: dict[int, float] = dataclasses.field(default_factory=dict)


def _executor(traces: dict[str, Trace], mode: str) -> list[Trace]:
    return [
        t
        for t in traces.values()
        if t.header.source == "executor" and t.header.policy.get("mode") == mode and t.steps
    ]


def _temperature(t: Trace) -> float:
    return float(t.header.workload.get("temperature", 0.0))


def _host_steps(profile: Profile, trace: Trace) -> list[tuple[StepRecord, float]]:
    """(step, seconds of SSD host work) per full-batch step of one SSD trace."""
    pol, wl = trace.header.policy, trace.header.workload
    k, batch = int(pol["k"]), int(wl.get("batch_size", 1))
    jit = pol.get("fallback") == "jit"
    context = _prompt_lens(trace)
    req = lat.link_s(profile.link, lat.request_bytes(batch))
    resp = lat.link_s(
        profile.link,
        lat.response_bytes(
            batch, k, profile.vocab_size, profile.dist_bytes, _temperature(trace) > 0
        ),
    )
    out = []
    steps = trace.steps
    for i, s in enumerate(steps[:-1]):
        nxt = steps[i + 1]
        if len(s.seqs) == batch and {o.seq for o in nxt.seqs} <= {o.seq for o in s.seqs}:
            ctx = sum(context[o.seq] for o in s.seqs) / batch
            fwd = lat.forward_s(profile.target, batch, k + 1, ctx + k + 1)
            rest = s.draft_s + s.wait_s + req + resp  # draft_s: jit or the fast speculator
            if jit and _answered(s):
                rest += float(lat.jit_answer_s(profile, batch))
            out.append((s, nxt.t_start_s - s.t_start_s - fwd - rest))
        for o in s.seqs:
            context[o.seq] += o.emitted_tokens
    return out


def _answered(step: StepRecord) -> bool:
    """A jit trace's step whose missed rows the draft answered (the target waited for it)."""
    return step.draft_s > 0 and any(not o.cache_hit and o.proposed > 0 for o in step.seqs)


def _full_steps(trace: Trace) -> list[StepRecord]:
    b = int(trace.header.workload.get("batch_size", 1))
    return [s for s in trace.steps[:-1] if len(s.seqs) == b]


def fit_jit_answer(ssd: list[Trace]) -> dict[int, float]:
    """Per batch size of the greedy SSD jit traces: the link on the critical path of steps
    the draft answered (jit) beyond that of the steps served from the cache alone, at the same
    batch size over every greedy SSD trace (trimmed means, 2% each side; >= 0)."""
    answered: dict[int, list[float]] = defaultdict(list)
    served: dict[int, list[float]] = defaultdict(list)
    for t in ssd:
        if _temperature(t) > 0:
            continue
        b = int(t.header.workload.get("batch_size", 1))
        jit = t.header.policy.get("fallback") == "jit"
        for s in _full_steps(t):
            (answered if jit and _answered(s) else served)[b].append(s.link_s)
    return {
        b: max(float(trim_mean(answered[b], 0.02) - trim_mean(served[b], 0.02)), 0.0)
        for b in sorted(answered)
        if len(answered[b]) >= 10 and len(served[b]) >= 10
    }


def host_samples(profile: Profile, trace: Trace) -> list[tuple[int, float]]:
    """(batch, seconds of SSD host work) per full-batch step of one SSD trace."""
    return [(len(s.seqs), sec) for s, sec in _host_steps(profile, trace)]


def _dist_rows(step: StepRecord) -> int:
    """Rows whose k proposals came with the draft's distributions: hits, and jit's misses
    (the fast speculator's proposals are one-hot, made on the target's side)."""
    return sum(1 for o in step.seqs if o.proposed > 0 and (o.cache_hit or step.fallback == "jit"))


def _mean_context(trace: Trace) -> float:
    lo, hi = trace.header.workload.get("prompt_len_tokens", (0, 0))
    out = trace.header.workload.get("output_len_tokens", (0, 0))
    return (lo + hi) / 2 + (out[0] + out[1]) / 4


def _model_parts(profile: Profile, trace: Trace) -> tuple[float, float, int]:
    """(modelled glue forward without ``prespec_glue_s``, modelled k-step tree, k) of a trace."""
    pol = trace.header.policy
    k, batch = int(pol["k"]), int(trace.header.workload.get("batch_size", 1))
    bare = dataclasses.replace(profile, prespec_glue_s={})
    g, t = lat.prespec_parts_s(bare, batch, k, sum(pol["fan_out"]), _mean_context(trace))
    return float(g), float(t), k


def fit_prespec_glue(profile: Profile, traces: list[Trace]) -> dict[int, float]:
    """Per batch size of the SSD traces (every temperature: the glue never samples): the median
    of each run's mean glue seconds beyond the draft's modelled forward of its k+1 tokens,
    floored at 0 (``Profile.prespec_glue_s``).

    Loop 21's runs took 0.8-1.6 ms beyond the model at every k (2-8) and B (1, 4, 8) while the
    ratio ranged 1.4-2.5: an offset. Left in the tree's scale (as before), it priced every tree
    step about 8% too slow at B = 1, k = 8 and the glue 1.2 ms too fast (the doorbell's depth,
    which sees both, came out about the same: 3.43 proposals either way)."""
    extra: dict[int, list[float]] = defaultdict(list)
    for t in traces:
        if (beyond := glue_beyond_model_s(profile, t)) is not None:
            extra[int(t.header.workload.get("batch_size", 1))].append(beyond)
    return {b: max(float(np.median(v)), 0.0) for b, v in sorted(extra.items())}


def glue_beyond_model_s(profile: Profile, trace: Trace) -> float | None:
    """An SSD trace's mean glue seconds beyond the draft's modelled forward of its k+1 tokens
    (``Profile.prespec_glue_s`` left out of the model), or None where the summary does not say."""
    glue = (trace.summary.extra if trace.summary is not None else {}).get("draft_glue_mean_s")
    if not glue:
        return None
    model, _, _ = _model_parts(profile, trace)
    return float(glue) - model


def fit_tree_scales(profile: Profile, traces: list[Trace]) -> dict[tuple[int, int], float]:
    """Per (batch, branches per sequence M) of the greedy SSD traces: the median of their
    trees' measured seconds per pre-speculation over the model's at the mean depth reached
    (the glue apart: ``fit_prespec_glue``).

    One scale for every tree shape priced a one-branch tree (k = 8) at twice its measured
    seconds while trees of 9-27 branches fit within about 20% (loop 13's first calibration
    pass: 4.1 against 2.8 ms a pre-speculation at B=1): the profile's tree grid, timed alone,
    is too coarse at one row. ``trace_costs.scaled_by_cells`` spreads these over the grid."""
    ratios: dict[tuple[int, int], list[float]] = defaultdict(list)
    for t in traces:
        extra = t.summary.extra if t.summary is not None else {}
        tree, depth = extra.get("draft_tree_mean_s"), extra.get("draft_tree_depth_mean")
        if _temperature(t) != 0 or not tree or not depth:
            continue
        _, model, k = _model_parts(profile, t)
        if model > 0:
            cell = (int(t.header.workload.get("batch_size", 1)), sum(t.header.policy["fan_out"]))
            ratios[cell].append(float(tree) / (model * float(depth) / k))
    return {cell: float(np.median(v)) for cell, v in sorted(ratios.items())}


def _sd_draft_by_temperature(traces: list[Trace]) -> dict[tuple[int, int], dict[bool, float]]:
    out: dict[tuple[int, int], dict[bool, float]] = defaultdict(dict)
    for t in traces:
        key = (int(t.header.workload.get("batch_size", 1)), int(t.header.policy.get("k", 0)))
        out[key][_temperature(t) > 0] = statistics.median(s.draft_s for s in t.steps)
    return out


def fit_sampling_scale(sd: list[Trace]) -> float | None:
    """Median ratio of SD's drafting seconds at T > 0 to T = 0 (same B and k)."""
    ratios = [
        v[True] / v[False]
        for v in _sd_draft_by_temperature(sd).values()
        if True in v and False in v and v[False] > 0
    ]
    return float(np.median(ratios)) if ratios else None


def weighted_median(values: list[float], weights: list[float]) -> float:
    """The smallest value with at least half the total weight at or below it."""
    pairs = sorted(zip(values, weights, strict=True))
    half, acc = sum(weights) / 2, 0.0
    for v, w in pairs:
        acc += w
        if acc >= half:
            return v
    return pairs[-1][0]


def tree_step_s(t: Trace) -> float | None:
    """A trace's mean seconds per tree step (tree seconds per pre-speculation over the mean
    depth reached), or None where the run summary does not say."""
    extra = t.summary.extra if t.summary is not None else {}
    tree, depth = extra.get("draft_tree_mean_s"), extra.get("draft_tree_depth_mean")
    return float(tree) / float(depth) if tree and depth else None


def tree_shape(t: Trace) -> tuple[int, int, tuple[int, ...]]:
    """(batch size, k, fan-out) of an SSD trace: the tree its draft pre-speculated."""
    pol = t.header.policy
    return int(t.header.workload.get("batch_size", 1)), int(pol["k"]), tuple(pol["fan_out"])


def fit_tree_sample_row_s(profile: Profile, ssd: list[Trace]) -> float | None:
    """Seconds per branch row and tree step that sampling adds, over SSD traces at T > 0
    (>= 0; None without a trace at T > 0 that reports its tree).

    Where greedy traces ran the same tree (B, k, fan-out): per such tree the median seconds
    per tree step at T > 0 minus the greedy median, per row (B * M), and the median of the
    trees weighted by their rows. Only where no tree ran at both: each trace's seconds per
    tree step beyond the greedy model's, per row, weighted the same way.

    Against the same tree measured greedy, not the model: the model's error at one tree size
    is not sampling's (loop 18: the greedy model read 12 us a row where the trees measured
    at both temperatures said 20, and validation's trees 25). Weighted: a one-branch tree's
    step says little about the cost of a row (loop 6's sparse k=8 traces read -2 ms a row
    against 65-170 us for 15-branch trees). ``profile``'s draft tree must already carry the
    greedy traces' tree scale.
    """
    by_shape: dict[tuple[int, int, tuple[int, ...]], dict[bool, list[float]]] = defaultdict(
        lambda: {True: [], False: []}
    )
    for t in ssd:
        step = tree_step_s(t)
        if step is not None:
            by_shape[tree_shape(t)][_temperature(t) > 0].append(step)
    per_row, rows = [], []
    for (batch, _, fan_out), steps in by_shape.items():
        if steps[True] and steps[False]:
            diff = statistics.median(steps[True]) - statistics.median(steps[False])
            per_row.append(diff / (batch * sum(fan_out)))
            rows.append(batch * sum(fan_out) * len(steps[True]))
    if not rows:
        for t in ssd:
            step = tree_step_s(t)
            if _temperature(t) == 0 or step is None:
                continue
            batch, k, fan_out = tree_shape(t)
            _, model = lat.prespec_parts_s(profile, batch, k, sum(fan_out), _mean_context(t))
            per_row.append((step - float(model) / k) / (batch * sum(fan_out)))
            rows.append(batch * sum(fan_out))
    return max(weighted_median(per_row, rows), 0.0) if rows else None


def _jit_cells(
    profile: Profile, ssd: list[Trace], sampling: bool
) -> dict[tuple[int, int], tuple[list[float], list[float]]]:
    """Per (k, missed rows) of the SSD jit traces at T > 0 (``sampling``) or greedy: the
    measured jit seconds of the steps that decoded missed rows, and their modelled chains."""
    cells: dict[tuple[int, int], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for t in ssd:
        pol = t.header.policy
        if (_temperature(t) > 0) is not sampling or pol.get("fallback") != "jit":
            continue
        k = int(pol["k"])
        context = _prompt_lens(t)
        for s in t.steps:
            missed = [o for o in s.seqs if not o.cache_hit and o.proposed > 0]
            if missed and s.draft_s > 0:
                ctx = sum(context[o.seq] for o in missed) / len(missed)
                measured, model = cells[(k, len(missed))]
                measured.append(s.draft_s)
                model.append(float(lat.draft_chain_s(profile, len(missed), k, ctx)))
            for o in s.seqs:
                context[o.seq] += o.emitted_tokens
    return cells


def _cell_arrays(cells) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(median measured, median model chain, missed rows, steps) per cell."""
    y = np.array([statistics.median(m) for m, _ in cells.values()])
    x = np.array([statistics.median(c) for _, c in cells.values()])
    rows = np.array([m for _, m in cells], dtype=float)
    w = np.array([len(m) for m, _ in cells.values()], dtype=float)
    return y, x, rows, w


def fit_jit(profile: Profile, ssd: list[Trace]) -> tuple[float, float, float] | None:
    """(scale, fixed seconds, seconds per missed row) of jit decoding over greedy SSD jit
    traces (module docstring); None without a jit step that decoded missed rows.

    ``scale x chain + fixed + per_row x rows`` through the (k, missed rows) cells' medians by
    non-negative least squares weighted by the steps per cell: the fixed part only where the
    cells span two k or more, the per-row part only where they span two missed-row counts;
    where the scale comes out 0, a scale alone (the ratio of the sums).
    """
    cells = _jit_cells(profile, ssd, sampling=False)
    if not cells:
        return None
    y, x, rows, w = _cell_arrays(cells)
    cols = {"scale": x}
    if len({k for k, _ in cells}) >= 2:
        cols["fixed"] = np.ones_like(x)
    if len(set(rows.tolist())) >= 2:
        cols["row"] = rows
    if len(cols) > 1:
        sw = np.sqrt(w)
        coef, _ = nnls(np.column_stack(list(cols.values())) * sw[:, None], y * sw)
        fit = dict(zip(cols, coef.tolist(), strict=True))
        if fit["scale"] > 0:
            return fit["scale"], fit.get("fixed", 0.0), fit.get("row", 0.0)
    return float((w * y).sum() / (w * x).sum()), 0.0, 0.0


def fit_jit_sampling_scale(
    profile: Profile, ssd: list[Trace], scale: float, fixed: float, row: float = 0.0
) -> float | None:
    """jit at T > 0 over the greedy fit (``scale`` x chain + ``fixed`` + ``row`` x missed rows):
    over the SSD jit traces at T > 0, the cells' median seconds against the greedy fit at
    their median chain, the ratio of the sums weighted by the steps; None without such a
    step."""
    cells = _jit_cells(profile, ssd, sampling=True)
    if not cells:
        return None
    y, x, rows, w = _cell_arrays(cells)
    model = scale * x + fixed + row * rows
    return float((w * y).sum() / (w * model).sum())


def fit_dist_row_s(profile: Profile, ssd: list[Trace], greedy: OverheadFit) -> float | None:
    """Median over SSD traces at T > 0 of their host work per step beyond ``greedy`` (the host
    work fitted at T = 0) and the verification's sampling (``ssdsim.latency.sampling_s`` with
    ``profile``'s AR/SD fit), per draft distribution received (k per row that carried them),
    >= 0; None: no such trace."""
    rows = []
    for t in ssd:
        steps = _host_steps(profile, t)
        k = int(t.header.policy["k"])
        dists = sum(_dist_rows(s) * k for s, _ in steps)
        if _temperature(t) == 0 or not dists:
            continue
        extra = sum(
            sec - greedy.at(len(s.seqs)) - lat.sampling_s(profile, len(s.seqs), k + 1, True)
            for s, sec in steps
        )
        rows.append(extra / dists)
    return max(float(np.median(rows)), 0.0) if rows else None


def fit_ssd_costs(profile: Profile, traces: dict[str, Trace]) -> SsdCosts:
    """SSD host work and the draft's scales, on ``profile`` as scaled so far (forwards)."""
    ssd, sd = _executor(traces, "ssd"), _executor(traces, "sd")
    greedy = [t for t in ssd if _temperature(t) == 0]
    answer = fit_jit_answer(ssd)
    profile = dataclasses.replace(profile, jit_answer_s=answer)
    samples = [x for t in (greedy or ssd) for x in host_samples(profile, t)]
    overhead = fit_overhead(samples) if samples else None
    tree_scales = fit_tree_scales(profile, ssd)
    treed = profile
    if tree_scales and profile.draft_tree is not None:
        treed = dataclasses.replace(
            profile, draft_tree=scaled_by_cells(profile.draft_tree, tree_scales)
        )
    jit = fit_jit(profile, ssd)
    return SsdCosts(
        overhead=overhead,
        tree_scales=tree_scales,
        sampling_scale=fit_sampling_scale(sd),
        tree_sample_row_s=fit_tree_sample_row_s(treed, ssd),
        jit_scale=jit[0] if jit else None,
        jit_fixed_s=jit[1] if jit else None,
        jit_row_s=jit[2] if jit else None,
        jit_sampling_scale=fit_jit_sampling_scale(profile, ssd, *jit) if jit else None,
        jit_answer_s=answer,
        dist_row_s=fit_dist_row_s(profile, ssd, overhead) if greedy and overhead else None,
        prespec_glue_s=fit_prespec_glue(profile, ssd),
    )
