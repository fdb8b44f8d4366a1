"""Cost calibration from traces: the forwards' time scale under real load, and host work per step.

A latency file (``executor.profile``) gives the shape of each model's forward latency over
batch, tokens and context; the traces of real runs say how long those forwards took while the
runs ran (this machine's load moves both by tens of percent). Per step of an AR or SD trace the
context of its sequences is rebuilt from the prompt lengths and the tokens emitted so far; then

- target scale per (batch size B, tokens per forward): the ratio of the mean ``verify_s`` of
  greedy steps to the modelled target forward (steps at T > 0 only for a cell without greedy
  ones); grid cells between fitted points are blended, beyond them the nearest one's
  (``scale_at``);
- draft scale per B and SD's fixed drafting seconds per step (``fit_draft_chain``): greedy SD's
  ``draft_s`` against the modelled k draft forwards, scale x forwards + fixed;
- host work per step: what a greedy step took beyond its drafting and its scaled target
  forward, start to next start (``Profile.mode_overheads``: fixed + per sequence, per mode);
- sampling's host work (``Profile.verify_sample_step_s``, ``Profile.verify_sample_row_s``):
  what AR and SD steps at T > 0 took beyond that, a line in the scored rows (B x tokens the
  target's forward scores) through the (mode, B, k) groups' means. Verification at T = 1 ran 1.4-4 ms longer than greedy at B = 1 in every
  loop so far; a scale pooled over T over-predicted the greedy steps by half of that.

Only executor traces set the scales (simulator traces run on the profile's own clock); without
AR or SD traces the latency file's own steps stand in. Never torch.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from scipy.stats import trim_mean

from ssdsim import latency as lat
from ssdsim.calibrate.latency_fit import OverheadFit, fit_overhead
from ssdsim.profile import ForwardLatency, LatencyGrid, LatencyMeasurements, Profile
from ssdsim.trace import Trace
from ssdsim.workload import Workload, prompt_lengths


def _prompt_lens(trace: Trace) -> dict[int, float]:
    """Prompt length of every sequence id of a trace (the range's mean when unknown)."""
    try:
        wl = Workload.from_dict(trace.header.workload)
    except ValueError:
        wl = None
    try:
        lens = prompt_lengths(wl) if wl else None
    except ValueError:
        lens = None
    mean = sum(wl.prompt_len_tokens) / 2 if wl else 0.0
    seqs = {o.seq for s in trace.steps for o in s.seqs}
    return {q: float(lens[q % len(lens)]) if lens else mean for q in seqs}


def step_records(trace: Trace) -> list[dict]:
    """Full-batch steps of an AR or SD trace: mode, batch, k, context, step_s, draft_s, verify_s,
    temperature.

    step_s runs from the step's start to the next step's start (host work between steps
    included), or to its end for the last step of a batch.
    """
    mode = trace.header.policy.get("mode")
    k = int(trace.header.policy.get("k", 0))
    batch = int(trace.header.workload.get("batch_size", 1))
    temperature = float(trace.header.workload.get("temperature", 0.0))
    context = _prompt_lens(trace)
    out = []
    steps = trace.steps
    for i, s in enumerate(steps):
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        same_batch = nxt is not None and {o.seq for o in nxt.seqs} <= {o.seq for o in s.seqs}
        end = nxt.t_start_s if same_batch else s.t_end_s
        if len(s.seqs) == batch:
            ctx = sum(context[o.seq] for o in s.seqs) / batch
            out.append(
                {
                    "mode": mode,
                    "batch": batch,
                    "k": k,
                    "context": ctx,
                    "step_s": end - s.t_start_s,
                    "draft_s": s.draft_s,
                    "verify_s": s.verify_s,
                    "temperature": temperature,
                }
            )
        for o in s.seqs:
            context[o.seq] += o.emitted_tokens
    return out


def scaled(fl: ForwardLatency, factor: float) -> ForwardLatency:
    """The same forward latency model with every second multiplied by ``factor``."""
    coef = {
        n: getattr(fl, n) * factor
        for n in ("fixed_s", "weight_s", "kv_s", "compute_s", "token_s", "attn_s")
    }
    grid = None
    if fl.grid is not None:
        g = fl.grid
        grid = LatencyGrid(g.batch, g.tokens, g.context, (np.asarray(g.seconds) * factor).tolist())
    return dataclasses.replace(fl, grid=grid, **coef)


def scale_at(scales: dict[tuple[int, int], float], batch: float, tokens: float) -> float:
    """A fitted (batch, tokens) scale at any point: linear in tokens within each fitted batch
    size, then linear in batch; flat beyond the fitted range."""
    by_batch: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for (b, n), v in sorted(scales.items()):
        by_batch[b].append((n, v))
    bs = sorted(by_batch)
    at_b = [
        float(np.interp(tokens, [n for n, _ in by_batch[b]], [v for _, v in by_batch[b]]))
        for b in bs
    ]
    return float(np.interp(batch, bs, at_b))


def scaled_by_cells(
    fl: ForwardLatency, scales: dict[tuple[int, int], float], by_tokens: bool = True
) -> ForwardLatency:
    """The forward model with each grid cell scaled by ``scale_at`` its (batch, tokens).

    by_tokens=False: the grid's tokens axis is something else (SSD tree branches): batch only,
    at the fitted scales' smallest token count. The formula (used only for ratios beyond the
    grid) takes the median scale.
    """
    if not scales:
        return fl
    out = scaled(fl, float(np.median(list(scales.values()))))
    if fl.grid is None:
        return out
    g = fl.grid
    low = min(n for _, n in scales)
    factor = np.array(
        [[scale_at(scales, b, n if by_tokens else low) for n in g.tokens] for b in g.batch]
    )
    seconds = np.asarray(g.seconds) * factor[:, :, None]
    return dataclasses.replace(
        out, grid=LatencyGrid(g.batch, g.tokens, g.context, seconds.tolist())
    )


def _target_forward(profile: Profile, s: dict) -> float:
    n = s["k"] + 1
    return lat.forward_s(profile.target, s["batch"], n, s["context"] + n)


def _groups(
    steps: list[dict], x_of, y_name: str, tokens_of
) -> list[tuple[tuple[int, int], float, float]]:
    """((batch, tokens), mean model seconds, mean measured seconds) per (mode, B, k, T).

    Means (2% trimmed each side), not medians: throughput pays for every step.
    """
    by: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for s in steps:
        key = (s["mode"], s["batch"], s["k"], s.get("temperature", 0.0))
        by[key].append((x_of(s), s[y_name]))
    return [
        (
            (key[1], tokens_of(key[0], key[2])),
            float(trim_mean([x for x, _ in v], 0.02)),
            float(trim_mean([y for _, y in v], 0.02)),
        )
        for key, v in sorted(by.items())
    ]


def _by_cell(groups: list[tuple[tuple[int, int], float, float]]) -> dict[tuple[int, int], float]:
    """Per (batch, tokens), the median ratio measured / model over its groups."""
    ratios: dict[tuple[int, int], list[float]] = defaultdict(list)
    for cell, x, y in groups:
        if x > 0:
            ratios[cell].append(y / x)
    return {c: float(np.median(r)) for c, r in sorted(ratios.items())}


def _greedy_first(steps: list[dict], key) -> list[dict]:
    """Greedy steps, plus the steps at T > 0 of any ``key`` that has no greedy step."""
    greedy = {key(s) for s in steps if not s.get("temperature")}
    return [s for s in steps if not s.get("temperature") or key(s) not in greedy]


def fit_target_scales(profile: Profile, steps: list[dict]) -> dict[tuple[int, int], float]:
    """Scale of the target forward per (B, tokens per forward): greedy verify_s / forward.

    verify_s also holds the greedy verification kernel, which the scale absorbs; what sampling
    adds at T > 0 is ``fit_sample_costs``'s. A cell with no greedy step takes its steps at T > 0.
    """
    tokens = lambda mode, k: 1 if mode == "ar" else k + 1  # noqa: E731
    steps = _greedy_first(steps, lambda s: (s["batch"], tokens(s["mode"], s["k"])))
    return _by_cell(_groups(steps, lambda s: _target_forward(profile, s), "verify_s", tokens))


def fit_sample_costs(
    profile: Profile, steps: list[dict], overheads: dict[str, OverheadFit]
) -> tuple[float, float] | None:
    """(seconds per step, seconds per scored row) of sampling's host work in AR and SD steps at
    T > 0 beyond ``profile``'s greedy forward and ``overheads``; None without such steps (or
    without a greedy fit of their mode).

    Each (mode, B, k) group's mean excess (2% trimmed) against its rows (B x tokens scored): a
    line ``fixed + per_row x rows`` by non-negative least squares over the groups, when their
    rows take two values or more; else a per-row cost alone (summed excess over summed rows).
    A per-row cost alone read 8 us a row from SD at B=1-4 in loop 17, while AR at B=1 paid
    0.1-0.2 ms a step more at T=1 than at T=0 (the sampling path runs from cold caches).
    """
    by: dict[tuple, list[float]] = defaultdict(list)
    for s in steps:
        fit = overheads.get(s["mode"])
        if s.get("temperature") and fit is not None:
            excess = s["step_s"] - s["draft_s"] - _target_forward(profile, s) - fit.at(s["batch"])
            by[(s["mode"], s["batch"], s["k"])].append(excess)
    if not by:
        return None
    rows = np.array([b * (1 if mode == "ar" else k + 1) for mode, b, k in by], dtype=float)
    excess = np.array([float(trim_mean(v, 0.02)) for v in by.values()])
    if len(set(rows.tolist())) >= 2:
        (fixed, per_row), _ = nnls(np.column_stack([np.ones_like(rows), rows]), excess)
        return float(fixed), float(per_row)
    return 0.0, max(float(excess.sum() / rows.sum()), 0.0)


def fit_draft_chain(
    profile: Profile, steps: list[dict]
) -> tuple[dict[tuple[int, int], float], float]:
    """Scale of the draft forward per (B, 1 token) and SD's fixed drafting seconds per step.

    SD's drafting per step = scale_B x its k modelled chain forwards + fixed (the first
    forward after the target's reloads the draft's weights into the caches: per forward,
    drafting at B=1 took 1.5 ms at k=2 and 0.9 ms at k=8 in loop 7's first pass). Fitted by
    non-negative least squares on relative error over the (B, k) groups' means; the fixed part
    needs two k at one B at least (else 0, and each B's scale is its median ratio, as before).
    Greedy steps only when there are any (``Profile.draft_sampling_scale`` covers sampling).
    """
    sd = [s for s in steps if s["mode"] == "sd"]
    greedy = [s for s in sd if not s.get("temperature")]
    sd = greedy or sd
    chain = lambda s: lat.draft_chain_s(profile, s["batch"], s["k"], s["context"])  # noqa: E731
    groups = [g for g in _groups(sd, chain, "draft_s", lambda mode, k: 1) if g[1] > 0 and g[2] > 0]
    batches = sorted({cell[0] for cell, _, _ in groups})
    per_batch = [sum(1 for cell, _, _ in groups if cell[0] == b) for b in batches]
    if not groups or max(per_batch) < 2:
        return _by_cell(groups), 0.0
    design = np.array(
        [[x if cell[0] == b else 0.0 for b in batches] + [1.0] for cell, x, _ in groups]
    )
    y = np.array([g[2] for g in groups])
    coef, _ = nnls(design / y[:, None], np.ones_like(y))
    if np.any(coef[:-1] <= 0):
        return _by_cell(groups), 0.0
    return {(b, 1): float(c) for b, c in zip(batches, coef[:-1], strict=True)}, float(coef[-1])


def _median(scales: dict) -> float:
    return float(np.median(list(scales.values()))) if scales else 1.0


@dataclass(frozen=True)
class TraceCosts:
    """Time scales applied to the profile's forward models, and host work per step."""

    target_scale: float
    draft_scale: float
    overheads: dict[str, OverheadFit]
    target_scales: dict[tuple[int, int], float] = dataclasses.field(default_factory=dict)
    draft_scales: dict[tuple[int, int], float] = dataclasses.field(default_factory=dict)
    sample_row_s: float | None = None
    sd_draft_fixed_s: float = 0.0
    sample_step_s: float | None = None


def fit_trace_costs(
    profile: Profile, traces: dict[str, Trace], latency: LatencyMeasurements | None
) -> tuple[Profile, TraceCosts]:
    """The profile with its forwards scaled to the traces' load, and its host work per step."""
    steps = [
        s
        for t in traces.values()
        if t.header.policy.get("mode") in ("ar", "sd")
        for s in step_records(t)
    ]
    measured = [
        s
        for t in traces.values()
        if t.header.source == "executor" and t.header.policy.get("mode") in ("ar", "sd")
        for s in step_records(t)
    ]
    if not steps and latency is not None:
        steps = measured = list(latency.host_steps)
    # Simulator traces run on the profile's own clock: only measured steps say anything about load.
    ts = fit_target_scales(profile, measured)
    ds, sd_fixed = fit_draft_chain(profile, measured)
    prof = dataclasses.replace(
        profile,
        target=scaled_by_cells(profile.target, ts),
        sd_draft_scales={b: v for (b, _), v in ds.items()},
        # the draft's forwards keep the profile's shape in B for SSD's worker, which runs on
        # its own core and has its own scales from SSD traces (jit, tree); SD's drafting in
        # the target's process gets its own (loop 7: SD's B=1 scale 0.54, B=4 1.03, carried
        # into the tree and jit, over-costed SSD at B=4 by ~30%)
        sd_draft_fixed_s=sd_fixed,
    )
    overheads: dict[str, OverheadFit] = {}
    for mode in ("ar", "sd"):
        of_mode = [s for s in steps if s["mode"] == mode]
        greedy = [s for s in of_mode if not s.get("temperature")]
        samples = [
            (s["batch"], s["step_s"] - s["draft_s"] - _target_forward(prof, s))
            for s in greedy or of_mode
        ]
        fit = fit_overhead(samples)
        if fit is not None:
            overheads[mode] = fit
    sampling = fit_sample_costs(prof, [s for s in measured if s["mode"] in overheads], overheads)
    step_s, row_s = sampling if sampling is not None else (None, None)
    return prof, TraceCosts(_median(ts), _median(ds), overheads, ts, ds, row_s, sd_fixed, step_s)
