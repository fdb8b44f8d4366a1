"""Cost calibration from traces: the forwards' time scale under real load, and host work per step.

A latency file (``executor.profile``) gives the shape of each model's forward latency over
batch, tokens and context; the traces of real runs say how long those forwards took while the
runs ran (this machine's load moves both by tens of percent). Per step of an AR or SD trace the
context of its sequences is rebuilt from the prompt lengths and the tokens emitted so far; then

- target scale: the median over (mode, B, k) of the ratio of the median ``verify_s`` to the
  modelled target forward;
- draft scale: the same for SD's ``draft_s`` against the modelled k draft forwards;
- host work per step: what a step took beyond its drafting and its scaled target forward,
  start to next start (``Profile.mode_overheads``: fixed + per sequence, per mode).

Only executor traces set the scales (simulator traces run on the profile's own clock); without
AR or SD traces the latency file's own steps stand in. Never torch.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

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
    """Full-batch steps of an AR or SD trace: mode, batch, k, context, step_s, draft_s, verify_s.

    step_s runs from the step's start to the next step's start (host work between steps
    included), or to its end for the last step of a batch.
    """
    mode = trace.header.policy.get("mode")
    k = int(trace.header.policy.get("k", 0))
    batch = int(trace.header.workload.get("batch_size", 1))
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


def _target_forward(profile: Profile, s: dict) -> float:
    n = s["k"] + 1
    return lat.forward_s(profile.target, s["batch"], n, s["context"] + n)


def _groups(steps: list[dict], x_of, y_name: str) -> list[tuple[str, float, float]]:
    """(mode, median model seconds, median measured seconds) per (mode, batch, k)."""
    by: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for s in steps:
        by[(s["mode"], s["batch"], s["k"])].append((x_of(s), s[y_name]))
    return [
        (key[0], float(np.median([x for x, _ in v])), float(np.median([y for _, y in v])))
        for key, v in sorted(by.items())
    ]


def fit_target_scale(profile: Profile, steps: list[dict]) -> float:
    """Scale of the target forward model: the median over (mode, B, k) of verify_s / forward.

    verify_s also holds the sampling or verification kernel (well under 1% of a forward here),
    which the scale absorbs.
    """
    groups = _groups(steps, lambda s: _target_forward(profile, s), "verify_s")
    ratios = [y / x for _, x, y in groups if x > 0]
    return float(np.median(ratios)) if ratios else 1.0


def fit_draft_scale(profile: Profile, steps: list[dict]) -> float:
    """Scale of the draft forward model: the median over (B, k) of SD's draft_s / k forwards."""
    sd = [s for s in steps if s["mode"] == "sd"]
    chain = lambda s: lat.draft_chain_s(profile, s["batch"], s["k"], s["context"])  # noqa: E731
    ratios = [y / x for _, x, y in _groups(sd, chain, "draft_s") if x > 0]
    return float(np.median(ratios)) if ratios else 1.0


@dataclass(frozen=True)
class TraceCosts:
    """Time scales applied to the profile's forward models, and host work per step."""

    target_scale: float
    draft_scale: float
    overheads: dict[str, OverheadFit]


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
    ts, ds = fit_target_scale(profile, measured), fit_draft_scale(profile, measured)
    tree = profile.draft_tree and scaled(profile.draft_tree, ds)
    prof = dataclasses.replace(
        profile, target=scaled(profile.target, ts), draft=scaled(profile.draft, ds), draft_tree=tree
    )
    overheads: dict[str, OverheadFit] = {}
    for mode in ("ar", "sd"):
        samples = [
            (s["batch"], s["step_s"] - s["draft_s"] - _target_forward(prof, s))
            for s in steps
            if s["mode"] == mode
        ]
        fit = fit_overhead(samples)
        if fit is not None:
            overheads[mode] = fit
    return prof, TraceCosts(ts, ds, overheads)
