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

The weights (``probe_weights``) are how far the traces' own step times follow their probes: the
probe times one kind of forward (one sequence, one token), and other forwards follow the
machine's moods less. Over loop 15's 84 calibration and 420 validation runs, the elasticity of
a run's mean verification time to its probe was 0.80 for AR at B=1 (the probe's own forward),
0.1-0.5 for every SD and SSD setting (3 to 9 tokens, B 1 and 4): scaling by the probe itself
(weight 1) over-corrected most runs. They can be fitted on the traces being calibrated
(``probe_weights``), per (mode, batch size) group (``group_key``): the slope of a stretch's
log mean step seconds on its log probes (the target's, and for SSD the draft's too), each
against its mean over the runs of one setting and stretch index, clipped to [0, 1]; pooled
over every group for the target alone (``"*"``, what a group without a fit takes).

A core's speed moves within a run too, so ``executor.run --speed-probe`` also probes between
batches (``marks``, ``executor.probe``): a run is cut into stretches, one per batch, each judged
by the mean of the probes at its ends (``stretches``), and its clock is stretched piecewise
(``warp_times``). A trace with no marks is one stretch, judged by the probes around it.
Fitted on a loop's few calibration passes the weights come out low (a slope on a noisy probe),
so traces probed between batches use weights measured once (``MEASURED_WEIGHTS``); traces
without marks keep fitted ones (``ssdsim.calibrate.core.calibrate``, ``probe_weights_from``).

When any trace lacks a probe nothing is rescaled and the reference is None. Never torch.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import trim_mean

from ssdsim.trace import STEP_CLOCK_READINGS, Trace


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


def _setting(trace: Trace) -> tuple:
    pol, wl = trace.header.policy, trace.header.workload
    keys = ("mode", "k", "fan_out", "fan_out_miss", "fallback", "rescale")
    return (
        *(str(pol.get(n)) for n in keys),
        wl.get("batch_size"),
        wl.get("temperature"),
        trace.header.source,
    )


@dataclass(frozen=True)
class Stretch:
    """A stretch of a run's decode clock (seconds, end exclusive) and the machine's speed there:
    the means of the probes at its ends, seconds per target forward and per draft forward (the
    draft's: SSD's worker on its own core; None without)."""

    start_s: float
    end_s: float
    target_s: float
    draft_s: float | None


def stretches(probe: Any) -> list[Stretch] | None:
    """A speed-probe record's stretches: one per batch where the record has ``marks``
    (``executor.probe``), else the whole run judged by the probes around it; None without a
    probe. The last stretch runs on to the end of time (steps timed past the last mark)."""
    if probe_seconds(probe) is None:
        return None
    marks = probe.get("marks") or []
    if len(marks) < 2:
        d = probe.get("draft_forward_s")
        return [Stretch(0.0, math.inf, float(probe["target_forward_s"]), d and float(d))]
    out = []
    for a, b in itertools.pairwise(marks):
        da, db = a.get("draft_forward_s"), b.get("draft_forward_s")
        out.append(
            Stretch(
                float(a["clock_s"]),
                float(b["clock_s"]),
                (float(a["target_forward_s"]) + float(b["target_forward_s"])) / 2,
                (float(da) + float(db)) / 2 if da and db else None,
            )
        )
    out[-1] = dataclasses.replace(out[-1], end_s=math.inf)
    return out


def stretch_index(starts: list[float], t: float) -> int:
    """The index of the stretch (by their start seconds, the first 0) a decode-clock reading
    ``t`` falls in."""
    return max(bisect.bisect_right(starts, t) - 1, 0)


def has_marks(trace: Trace) -> bool:
    """Whether the trace's speed probe was also taken between batches (``marks``)."""
    return len((trace.header.devices.get("speed_probe") or {}).get("marks") or []) >= 2


def draft_reference(traces: Iterable[Trace]) -> float | None:
    """The median of the SSD traces' draft probes (seconds per draft forward on the draft's
    core); None when no trace has one."""
    probes = [
        float(d)
        for t in traces
        if (d := (t.header.devices.get("speed_probe") or {}).get("draft_forward_s"))
    ]
    return statistics.median(probes) if probes else None


def group_key(mode: str, batch_size: int) -> str:
    """The runs a pair of probe weights is fitted over and applied to: ``"ssd/4"``."""
    return f"{mode}/{int(batch_size)}"


@dataclass(frozen=True)
class ProbeWeights:
    """How far a run's step times follow the target's and the draft's probes, per (mode, batch
    size) group (``group_key``; ``"*"``: the target's, pooled over every group). A group not
    fitted takes its mode's nearest batch size, else the pooled weight, else 1 and 0."""

    by_group: dict[str, tuple[float, float]]

    def get(self, mode: str, batch_size: int) -> tuple[float, float]:
        key = group_key(mode, batch_size)
        if key in self.by_group:
            return self.by_group[key]
        same = [
            (abs(int(k.split("/")[1]) - batch_size), k)
            for k in self.by_group
            if k.startswith(f"{mode}/")
        ]
        if same:
            return self.by_group[min(same)[1]]
        return self.by_group.get("*", (1.0, 0.0))

    def to_dict(self) -> dict[str, list[float]]:
        return {k: [round(w, 6) for w in v] for k, v in sorted(self.by_group.items())}

    @classmethod
    def from_provenance(cls, prov: dict[str, Any]) -> ProbeWeights:
        """A profile's weights; a profile from before the groups has one target weight."""
        if prov.get("speed_probe_weights"):
            return cls(
                {k: (float(a), float(b)) for k, (a, b) in prov["speed_probe_weights"].items()}
            )
        w = prov.get("speed_probe_weight")
        return cls({"*": (1.0 if w is None else float(w), 0.0)})


# The weights a calibration of traces probed between batches uses unless told to fit them:
# the target's probe times a target forward, so AR's and SD's steps follow it with weight 1; an
# SSD step also waits on the draft's core. Measured ad hoc (6 passes of 6 loop-19 points with a
# probe before every batch, 2 Dec; ``executor.probe``): the least-squares weights that steadied
# the passes most were 0.90 (AR B=1), 0.85 (AR B=4), 1.00 (SD k=4 B=1), 0.40 (SD k=4 B=4 T=1),
# 0.70 + draft 0.30 (SSD k=4 uniform fast B=1) and 0.15 + draft 0.70 (SSD k=8 geometric fast
# B=4 T=1), each from 6 passes; these constants take the B=1 points (where the probe's own
# forward shape is) for every batch size, a choice loop 20 informed (below). Fitted on a loop's
# calibration runs instead (3 passes a setting)
# they come out lower, as a slope on a noisy regressor does (the probe is 50 ms of forwards):
# loop 20 fitted AR B=4 0.48 and SSD B=4 0.32 + draft 0.24, and validated at 5.8% / 19.1% (median
# / max error at the probed speed) against 3.3% / 16.5% with these. Probes around a run only
# follow it less: loop 19's runs (no marks) validated at 6.1% / 20.1% with these, 5.5% / 17.1%
# with weights fitted on its calibration runs, which a calibration of such traces uses.
MEASURED_WEIGHTS = ProbeWeights(
    {"*": (1.0, 0.0), "ar/1": (1.0, 0.0), "sd/1": (1.0, 0.0), "ssd/1": (0.7, 0.3)}
)


def _stretch_rows(trace: Trace, min_steps: int) -> list[tuple[int, float, float, float | None]]:
    """(stretch index, log mean (2% trimmed) step seconds, log target probe, log draft probe)
    of each stretch of the trace with ``min_steps`` steps starting in it."""
    spans = stretches(trace.header.devices.get("speed_probe"))
    if not spans:
        return []
    starts = [sp.start_s for sp in spans]
    durations: list[list[float]] = [[] for _ in spans]
    for s in trace.steps:
        durations[stretch_index(starts, s.t_start_s)].append(s.t_end_s - s.t_start_s)
    return [
        (
            i,
            math.log(float(trim_mean(d, 0.02))),
            math.log(sp.target_s),
            sp.draft_s and math.log(sp.draft_s),
        )
        for i, (sp, d) in enumerate(zip(spans, durations, strict=True))
        if len(d) >= min_steps and min(d) > 0
    ]


def _slopes(rows: list[tuple[float, float, float | None]]) -> tuple[float, float] | None:
    """Least-squares slopes of demeaned y on demeaned log probes (the draft's where every row
    has one), each clipped to [0, 1]; None when the probes did not move."""
    y = np.array([r[0] for r in rows])
    two = all(r[2] is not None for r in rows)
    x = np.array([[r[1], r[2]] if two else [r[1]] for r in rows], dtype=float)
    if len(rows) < 2 or float(np.sum(x[:, 0] ** 2)) <= 1e-12:
        return None
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    wt = min(max(float(coef[0]), 0.0), 1.0)
    wd = min(max(float(coef[1]), 0.0), 1.0) if two else 0.0
    return wt, wd


def probe_weights(traces: Iterable[Trace], min_steps: int = 8) -> ProbeWeights | None:
    """Fit ``ProbeWeights`` on probed traces (module docstring): within each group, each
    stretch's log mean step seconds less its mean over the runs of one setting and stretch
    index (the same prompts, other times), on the stretches' log probes less theirs; None when
    no setting has two probed runs."""
    cells: dict[tuple, list[tuple[float, float, float | None]]] = {}
    for t in traces:
        group = group_key(
            str(t.header.policy.get("mode")), int(t.header.workload.get("batch_size", 1))
        )
        for i, y, xt, xd in _stretch_rows(t, min_steps):
            cells.setdefault((group, _setting(t), i), []).append((y, xt, xd))
    by_group: dict[str, list[tuple[float, float, float | None]]] = {}
    for (group, *_), rows in cells.items():
        if len(rows) < 2:
            continue
        my, mt = statistics.fmean(r[0] for r in rows), statistics.fmean(r[1] for r in rows)
        has_d = all(r[2] is not None for r in rows)
        md = statistics.fmean(r[2] for r in rows) if has_d else None
        by_group.setdefault(group, []).extend(
            (y - my, xt - mt, xd - md if has_d else None) for y, xt, xd in rows
        )
    if not by_group:
        return None
    fitted = {g: w for g, rows in by_group.items() if (w := _slopes(rows)) is not None}
    pooled = _slopes([(y, xt, None) for rows in by_group.values() for y, xt, _ in rows])
    if pooled is not None:
        fitted["*"] = (pooled[0], 0.0)
    return ProbeWeights(fitted) if fitted else None


def stretch_slowdowns(
    spans: list[Stretch], ref: float, ref_draft: float | None, weights: tuple[float, float]
) -> list[float]:
    """Each stretch's slowdown against the references: ``(target / ref) ** w_target`` times
    ``(draft / ref_draft) ** w_draft`` where both draft probes are known."""
    wt, wd = weights
    out = []
    for sp in spans:
        f = (sp.target_s / ref) ** wt
        if wd > 0 and sp.draft_s and ref_draft:
            f *= (sp.draft_s / ref_draft) ** wd
        out.append(f)
    return out


def run_slowdown(spans: list[Stretch], factors: list[float], end_s: float) -> float:
    """A run's slowdown from its stretches': its decode seconds over what they would have taken
    at the reference speed (each stretch's seconds over its slowdown)."""
    at_ref = sum(
        max(min(sp.end_s, end_s) - sp.start_s, 0.0) / f
        for sp, f in zip(spans, factors, strict=True)
    )
    return end_s / at_ref if at_ref > 0 else factors[0]


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
    return warp_times(trace, [0.0], [factor])


_CLOCK_FIELDS = ("t_start_s", "t_end_s", *STEP_CLOCK_READINGS)


def warp_times(trace: Trace, starts: list[float], factors: list[float]) -> Trace:
    """The trace as if the machine had run ``factors[i]`` times as long from decode-clock second
    ``starts[i]`` (the first is 0) to the next: the clock is stretched piecewise (readings of it
    move, durations of a step scale by its stretch's factor), the summary by the whole run's."""
    base = [0.0]
    for i in range(1, len(starts)):
        base.append(base[-1] + (starts[i] - starts[i - 1]) * factors[i - 1])

    def clock(t: float) -> float:
        i = stretch_index(starts, t)
        return base[i] + (t - starts[i]) * factors[i]

    steps = []
    for s in trace.steps:
        f = factors[stretch_index(starts, s.t_start_s)]
        changes = {
            n: clock(v) if n in _CLOCK_FIELDS else v * f
            for n, v in _scaled_fields(s, 1.0).items()
            if v is not None
        }
        steps.append(dataclasses.replace(s, **changes))
    summary = trace.summary
    if summary is not None:
        end = trace.steps[-1].t_end_s if trace.steps else 0.0
        whole = clock(end) / end if end > 0 else factors[0]
        extra = {
            k: v * whole if k.endswith("_s") and isinstance(v, float) else v
            for k, v in summary.extra.items()
        }
        summary = dataclasses.replace(summary, **_scaled_fields(summary, whole), extra=extra)
    return Trace(header=trace.header, steps=steps, summary=summary)


def at_reference_speed(
    traces: dict[str, Trace], weights: ProbeWeights | float = 1.0
) -> tuple[dict[str, Trace], float | None]:
    """Every trace brought to the reference speed (the median probes' of target and draft),
    stretch by stretch (``stretches``, ``stretch_slowdowns`` with its group's ``weights``; a
    number: that target weight for all), and the target's reference (seconds per forward);
    the traces unchanged and None when any has no probe."""
    ref = speed_reference(traces.values())
    if ref is None:
        return traces, None
    if not isinstance(weights, ProbeWeights):
        weights = ProbeWeights({"*": (float(weights), 0.0)})
    ref_draft = draft_reference(traces.values())
    out = {}
    for p, t in traces.items():
        spans = stretches(t.header.devices.get("speed_probe")) or []
        w = weights.get(
            str(t.header.policy.get("mode")), int(t.header.workload.get("batch_size", 1))
        )
        slow = stretch_slowdowns(spans, ref, ref_draft, w)
        out[p] = warp_times(t, [sp.start_s for sp in spans], [1.0 / f for f in slow])
    return out, ref
