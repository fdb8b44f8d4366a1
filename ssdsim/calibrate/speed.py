"""Calibration traces brought to one machine speed before any fit (``executor.run --speed-probe``).

On a shared machine that drifts, the traces a profile is fitted on ran at different speeds (in
loop 10 the same AR run took 4.65 to 4.86 ms a step over three calibration passes, and 4.11 to
5.00 ms over three validation passes). Each fitted quantity comes from a few traces, so it
inherits their passes' speed. A trace whose header carries a speed probe (seconds per target
forward, timed just before and after its decode) is rescaled here to the reference speed, the
median probe of all the traces: every duration is multiplied, and every rate divided, by
``reference / probe``. The probe runs on the target's device; an SSD trace's draft-side times are
scaled by the same factor (a drift of the whole machine; a core's own short stalls are not seen).
SSD runs also probe the draft's own core (``draft_forward_s``); their median is recorded
(``draft_reference``) so that validation can say how fast each core ran against calibration.

When any trace lacks a probe nothing is rescaled and the reference is None. Never torch.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable
from typing import Any

from ssdsim.trace import Trace


def probe_seconds(probe: Any) -> float | None:
    """Seconds per target forward of a speed-probe record (``executor.run``'s ``speed_probe``,
    in its report and its trace header); None when there is none."""
    if not isinstance(probe, dict) or not probe.get("target_forward_s"):
        return None
    return float(probe["target_forward_s"])


def draft_probe_seconds(probe: Any) -> float | None:
    """Seconds per draft forward on the SSD draft worker's own core (``draft_forward_s`` of an
    SSD run's speed-probe record); None when there is none."""
    if not isinstance(probe, dict) or not probe.get("draft_forward_s"):
        return None
    return float(probe["draft_forward_s"])


def draft_probe_s(trace: Trace) -> float | None:
    """Seconds per draft forward the trace's draft-core probe measured (None: none)."""
    return draft_probe_seconds(trace.header.devices.get("speed_probe"))


def draft_reference(traces: Iterable[Trace]) -> float | None:
    """The median draft-core probe of the SSD executor traces: the speed of the draft's core a
    profile fitted on them describes; None without SSD traces or when any lacks the probe."""
    probes = [
        draft_probe_s(t)
        for t in traces
        if t.header.source == "executor" and t.header.policy.get("mode") == "ssd"
    ]
    if not probes or None in probes:
        return None
    return statistics.median(probes)


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


def at_reference_speed(traces: dict[str, Trace]) -> tuple[dict[str, Trace], float | None]:
    """Every trace rescaled to the median probe's speed, and that reference (seconds per target
    forward); the traces unchanged and None when any has no probe."""
    ref = speed_reference(traces.values())
    if ref is None:
        return traces, None
    return {p: scale_times(t, ref / probe_s(t)) for p, t in traces.items()}, ref
