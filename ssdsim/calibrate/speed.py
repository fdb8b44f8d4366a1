"""Calibration traces brought to one machine speed before any fit (``executor.run --speed-probe``).

On a shared machine that drifts, the traces a profile is fitted on ran at different speeds (in
loop 10 the same AR run took 4.65 to 4.86 ms a step over three calibration passes, and 4.11 to
5.00 ms over three validation passes). Each fitted quantity comes from a few traces, so it
inherits their passes' speed. A trace whose header carries a speed probe (seconds per target
forward, timed just before and after its decode) is rescaled here to the reference speed, the
median probe of all the traces: every duration is multiplied, and every rate divided, by
``(reference / probe) ** weight``. The probe runs on the target's device; an SSD trace's
draft-side times are scaled by the same factor (a drift of the whole machine; a core's own
short stalls are not seen). SSD runs also probe the draft's own core (``draft_forward_s`` in
the record), which neither calibration nor validation uses: over loop 15's 320 SSD validation
runs the draft tree's time per step followed the target's probe (elasticity 0.45) more than
the draft's (0.14).

The weight (``probe_weight``) is how far the traces' own step times follow their probes: the
probe times one kind of forward (one sequence, one token), and other forwards follow the
machine's moods less. Over loop 15's 84 calibration and 420 validation runs, the elasticity of
a run's mean verification time to its probe was 0.80 for AR at B=1 (the probe's own forward),
0.1-0.5 for every SD and SSD setting (3 to 9 tokens, B 1 and 4), 0.27 pooled over the
calibration runs and 0.43 over the validation runs: scaling by the probe itself (weight 1)
over-corrected most runs. It is fitted on the traces being calibrated, pooled within groups of
runs of one setting (slope of log mean verification seconds on log probe), clipped to [0, 1];
1 when no setting has two probed runs.

When any trace lacks a probe nothing is rescaled and the reference is None. Never torch.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable
from typing import Any

from scipy.stats import trim_mean

from ssdsim.trace import Trace


def probe_seconds(probe: Any) -> float | None:
    """Seconds per target forward of a speed-probe record (``executor.run``'s ``speed_probe``,
    in its report and its trace header); None when there is none."""
    if not isinstance(probe, dict) or not probe.get("target_forward_s"):
        return None
    return float(probe["target_forward_s"])


def probe_s(trace: Trace) -> float | None:
    """Seconds per target forward the trace's speed probe measured (None: no probe)."""
    return probe_seconds(trace.header.devices.get("speed_probe"))


def speed_reference(traces: Iterable[Trace]) -> float | None:
    """The median of the traces' speed probes: the machine's speed a profile fitted on them
    describes; None when any trace has no probe (a mix would say nothing about the rest)."""
    probes = [probe_s(t) for t in traces]
    if not probes or None in probes:
        return None
    return statistics.median(probes)


def slowdown(probe: float, reference: float, weight: float | None) -> float:
    """How many times as long a run's work took against the reference speed, by its probe:
    ``(probe / reference) ** weight`` (weight None: 1)."""
    return (probe / reference) ** (1.0 if weight is None else weight)


def _setting(trace: Trace) -> tuple:
    pol, wl = trace.header.policy, trace.header.workload
    keys = ("mode", "k", "fan_out", "fan_out_miss", "fallback", "rescale")
    return (
        *(str(pol.get(n)) for n in keys),
        wl.get("batch_size"),
        wl.get("temperature"),
        trace.header.source,
    )


def probe_weight(traces: Iterable[Trace], min_steps: int = 10) -> float | None:
    """How far the traces' verification times follow their speed probes (module docstring):
    the pooled within-setting slope of log mean (2% trimmed) verification seconds of full-batch
    steps on log probe, clipped to [0, 1]; None when no setting has two probed runs."""
    groups: dict[tuple, list[tuple[float, float]]] = {}
    for t in traces:
        probe, b = probe_s(t), int(t.header.workload.get("batch_size", 1))
        verify = [s.verify_s for s in t.steps if len(s.seqs) == b and s.verify_s > 0]
        if probe and len(verify) >= min_steps:
            y = float(trim_mean(verify, 0.02))
            groups.setdefault(_setting(t), []).append((math.log(probe), math.log(y)))
    sxy = sxx = 0.0
    for rows in groups.values():
        if len(rows) < 2:
            continue
        mx = statistics.fmean(x for x, _ in rows)
        my = statistics.fmean(y for _, y in rows)
        sxy += sum((x - mx) * (y - my) for x, y in rows)
        sxx += sum((x - mx) ** 2 for x, _ in rows)
    if sxx <= 0:
        return None
    return min(max(sxy / sxx, 0.0), 1.0)


def _scaled_fields(obj: Any, factor: float) -> dict[str, Any]:
    """Replacements for a record's durations (``*_s``) and rates (``*_per_s``)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if f.name.endswith("_s") and isinstance(v, float):
            out[f.name] = v / factor if f.name.endswith("per_s") else v * factor
    return out


def scale_times(trace: Trace, factor: float) -> Trace:
    """The trace as if the machine had run ``factor`` times as long for every piece of work."""
    steps = [dataclasses.replace(s, **_scaled_fields(s, factor)) for s in trace.steps]
    summary = trace.summary
    if summary is not None:
        extra = {
            k: v * factor if k.endswith("_s") and isinstance(v, float) else v
            for k, v in summary.extra.items()
        }
        summary = dataclasses.replace(summary, **_scaled_fields(summary, factor), extra=extra)
    return Trace(header=trace.header, steps=steps, summary=summary)


def at_reference_speed(
    traces: dict[str, Trace], weight: float = 1.0
) -> tuple[dict[str, Trace], float | None]:
    """Every trace rescaled to the median probe's speed (each by ``(reference / probe) **
    weight``), and that reference (seconds per target forward); the traces unchanged and None
    when any has no probe."""
    ref = speed_reference(traces.values())
    if ref is None:
        return traces, None
    return {
        p: scale_times(t, 1.0 / slowdown(probe_s(t), ref, weight)) for p, t in traces.items()
    }, ref
