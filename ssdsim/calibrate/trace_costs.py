"""Host work per decode step, from measured decode steps (latency file) and executor traces.

The simulator charges the target ``step_overhead_s + seq_overhead_s * B`` per step beside its
forwards (``ssdsim.latency.step_overhead_s``). Calibration takes it as what a measured SD step
took beyond its drafting and its target forward of k+1 tokens (``latency_fit.host_residuals``),
over the latency file's SD steps and the SD traces (per step, the mean context of its
sequences is rebuilt from the prompt lengths and the tokens emitted so far). Never torch.
"""

from __future__ import annotations

from ssdsim.calibrate.latency_fit import OverheadFit, fit_overhead, host_residuals
from ssdsim.profile import LatencyMeasurements, Profile
from ssdsim.trace import Trace
from ssdsim.workload import Workload, prompt_lengths


def _prompt_lens(trace: Trace) -> dict[int, float]:
    """Prompt length of every sequence id of a trace (the range's mean when unknown)."""
    try:
        wl = Workload.from_dict(trace.header.workload)
        lens = prompt_lengths(wl)
    except ValueError:
        lens = None
        wl = None
    mean = sum(wl.prompt_len_tokens) / 2 if wl else 0.0
    seqs = {o.seq for s in trace.steps for o in s.seqs}
    return {q: float(lens[q % len(lens)]) if lens else mean for q in seqs}


def step_records(trace: Trace) -> list[dict]:
    """The full-batch steps of an AR or SD trace as host-step dicts (``HOST_STEP_FIELDS``)."""
    mode = trace.header.policy.get("mode")
    k = int(trace.header.policy.get("k", 0))
    batch = int(trace.header.workload.get("batch_size", 1))
    context = _prompt_lens(trace)
    out = []
    for s in trace.steps:
        if len(s.seqs) == batch:
            out.append(
                {
                    "mode": mode,
                    "batch": batch,
                    "k": k,
                    "context": sum(context[o.seq] for o in s.seqs) / batch,
                    "step_s": s.t_end_s - s.t_start_s,
                    "draft_s": s.draft_s,
                    "verify_s": s.verify_s,
                }
            )
        for o in s.seqs:
            context[o.seq] += o.emitted_tokens
    return out


def trace_overheads(
    profile: Profile, traces: dict[str, Trace], latency: LatencyMeasurements | None
) -> dict[str, OverheadFit]:
    """Fitted host work per step: ``verify`` (SD/SSD steps) and ``ar`` (AR steps)."""
    steps = list(latency.host_steps) if latency else []
    for trace in traces.values():
        if trace.header.policy.get("mode") in ("ar", "sd"):
            steps += step_records(trace)
    out: dict[str, OverheadFit] = {}
    for name, mode in (("verify", "sd"), ("ar", "ar")):
        fit = fit_overhead(host_residuals(profile.target, steps, mode))
        if fit is not None:
            out[name] = fit
    return out
