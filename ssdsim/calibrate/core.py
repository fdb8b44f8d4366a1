"""Calibration: a Profile from executor traces (chance) and measured latencies (cost).

``calibrate(trace_paths, latency=None, base=None)`` reads and checks every trace first (errors
name the file), fits one ChancePoint per (temperature, rescale) group (``chance_fit``), takes
the forward formulas, the link and the host work per step from a ``LatencyMeasurements`` file
(``latency_fit``), and from the traces the host work the latency file cannot see (see
``trace_costs``); everything else (vocabulary, memory, temperature model) comes from the base
profile. Never imports torch or the executor.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ssdsim._schema import SchemaError
from ssdsim.calibrate.chance_fit import PointFit, fit_point
from ssdsim.calibrate.latency_fit import FormulaFit, OverheadFit, fit_forward
from ssdsim.calibrate.speed import (
    MEASURED_WEIGHTS,
    ProbeWeights,
    at_reference_speed,
    draft_reference,
    has_marks,
    probe_s,
    probe_weights,
    speed_reference,
)
from ssdsim.calibrate.ssd_costs import SsdCosts, fit_ssd_costs
from ssdsim.calibrate.tally import tally_traces
from ssdsim.calibrate.trace_costs import TraceCosts, fit_trace_costs, scaled_by_cells
from ssdsim.profile import Chance, LatencyMeasurements, Profile, load_profile
from ssdsim.trace import Trace, read_trace


@dataclass
class Calibration:
    """The calibrated profile and the fits behind it (for the residual report)."""

    profile: Profile
    points: list[PointFit] = field(default_factory=list)
    forwards: dict[str, FormulaFit] = field(default_factory=dict)
    overheads: dict[str, OverheadFit] = field(default_factory=dict)
    costs: TraceCosts | None = None
    ssd: SsdCosts | None = None
    traces: dict[str, Trace] = field(default_factory=dict)


def read_traces(paths: Sequence[str | Path]) -> dict[str, Trace]:
    """Every trace, read and checked before any fitting (errors name the file)."""
    if not paths:
        raise SchemaError("calibrate: give at least one trace file")
    out: dict[str, Trace] = {}
    for p in paths:
        trace = read_trace(p)
        if trace.header.source != "executor" and trace.header.source != "simulator":
            raise SchemaError(f"{p}: header source {trace.header.source!r}")
        out[str(p)] = trace
    return out


def _chance(fits: list[PointFit], base: Chance) -> Chance:
    """Base values from the point nearest greedy with no rescale; every point kept."""
    if not fits:
        return base
    anchor = min(fits, key=lambda f: (f.point.temperature, abs(1.0 - f.point.rescale))).point
    return dataclasses.replace(
        base,
        alpha=anchor.alpha,
        alpha_after_miss=anchor.alpha_after_miss,
        alpha_fast=anchor.alpha_fast or base.alpha_fast,
        coverage=anchor.coverage or base.coverage,
        points=tuple(f.point for f in fits),
    )


def _provenance(
    traces: dict[str, Trace],
    latency: LatencyMeasurements | None,
    settings: dict[str, Any],
    speed: float | None,
) -> dict[str, Any]:
    first = next(iter(traces.values())).header
    try:
        version = metadata.version("ssdsim")
    except metadata.PackageNotFoundError:
        version = None
    return {
        "tool": "python -m ssdsim.calibrate",
        "models": dict(first.models),
        "devices": dict(first.devices),
        "versions": {**first.versions, "ssdsim": version},
        "traces": [
            {
                "path": p,
                "policy": t.header.policy.get("mode"),
                "workload": t.header.workload.get("name"),
                "batch_size": t.header.workload.get("batch_size"),
                "temperature": t.header.workload.get("temperature"),
                "steps": len(t.steps),
                "speed_probe_s": probe_s(t),
            }
            for p, t in traces.items()
        ],
        "latency": dict(latency.provenance) if latency else None,
        "speed_probe_s": speed,
        "settings": settings,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def calibrate(
    trace_paths: Sequence[str | Path],
    latency: LatencyMeasurements | None = None,
    base: Profile | None = None,
    *,
    name: str = "calibrated",
    depth: int = 32,
    min_samples: int = 30,
    normalize_speed: bool = True,
    probe_weights_from: str = "auto",
) -> Calibration:
    """Fit a Profile to traces (and a latency file); see the module docstring. With
    ``normalize_speed`` and a speed probe in every trace, each trace's times are first brought
    to the median probes' speed, stretch by stretch of its decode clock where the probe has
    marks between batches, by the probes' ratios to the powers of its (mode, batch) group's
    weights: ``MEASURED_WEIGHTS`` (``probe_weights_from="measured"``, and ``"auto"`` when every
    trace was probed between batches) or fitted on the traces (``"fitted"``, and ``"auto"``
    otherwise: a probe around the run only follows it less; ``ssdsim.calibrate.speed``)."""
    if probe_weights_from not in ("auto", "measured", "fitted"):
        raise ValueError(
            f"probe_weights_from: 'auto', 'measured' or 'fitted', got {probe_weights_from!r}"
        )
    base = base or load_profile("embedded-cpu")
    traces = read_traces(trace_paths)
    fitted = probe_weights(traces.values())
    if probe_weights_from == "auto":
        probe_weights_from = "measured" if all(map(has_marks, traces.values())) else "fitted"
    weights = (
        MEASURED_WEIGHTS
        if probe_weights_from == "measured"
        else fitted or ProbeWeights({"*": (1.0, 0.0)})
    )
    draft_speed = draft_reference(traces.values())
    if normalize_speed:
        traces, speed = at_reference_speed(traces, weights)
    else:
        speed = speed_reference(traces.values())
    groups = tally_traces(traces)
    fits = [
        f
        for (t, c), tally in sorted(groups.items())
        if (f := fit_point(tally, t, c, depth, min_samples)) is not None
    ]
    if not fits:
        raise SchemaError(
            "calibrate: no trace has draft proposals (AR traces alone say nothing about acceptance)"
        )
    cal = Calibration(profile=base, points=fits, traces=traces)
    changes: dict[str, Any] = {"chance": _chance(fits, base.chance)}
    if latency is not None:
        for role in ("target", "draft", "draft_tree"):
            fwd = getattr(latency, role)
            if fwd is not None and fwd.grid is not None:
                cal.forwards[role] = fit_forward(fwd.grid)
                changes[role] = cal.forwards[role].latency
        changes["link"] = latency.link
    scaled, cal.costs = fit_trace_costs(dataclasses.replace(base, **changes), traces, latency)
    cal.overheads = dict(cal.costs.overheads)
    changes.update(
        target=scaled.target,
        draft_tree=scaled.draft_tree,
        sd_draft_fixed_s=scaled.sd_draft_fixed_s,
        sd_draft_scales=scaled.sd_draft_scales,
    )
    if cal.costs.sample_row_s is not None:  # before SSD's: its dist rows are what is left
        changes["verify_sample_row_s"] = cal.costs.sample_row_s
        changes["verify_sample_step_s"] = cal.costs.sample_step_s or 0.0
    cal.ssd = fit_ssd_costs(dataclasses.replace(base, **changes), traces)
    if cal.ssd.tree_scales and scaled.draft_tree is not None:
        changes["draft_tree"] = scaled_by_cells(scaled.draft_tree, cal.ssd.tree_scales)
    if cal.ssd.sampling_scale is not None:
        changes["draft_sampling_scale"] = cal.ssd.sampling_scale
    if cal.ssd.jit_scale is not None:
        changes["jit_scale"] = cal.ssd.jit_scale
        changes["jit_fixed_s"] = cal.ssd.jit_fixed_s or 0.0
        changes["jit_row_s"] = cal.ssd.jit_row_s or 0.0
    if cal.ssd.jit_sampling_scale is not None:
        changes["jit_sampling_scale"] = cal.ssd.jit_sampling_scale
    if cal.ssd.jit_answer_s:
        changes["jit_answer_s"] = cal.ssd.jit_answer_s
    if cal.ssd.prespec_glue_s:
        changes["prespec_glue_s"] = cal.ssd.prespec_glue_s
    if cal.ssd.tree_sample_row_s is not None:
        changes["tree_sample_row_s"] = cal.ssd.tree_sample_row_s
    if cal.ssd.dist_row_s is not None:
        changes["ssd_dist_row_s"] = cal.ssd.dist_row_s
    if cal.ssd.overhead is not None:
        cal.overheads["ssd"] = cal.ssd.overhead
    changes.update(overhead_fields(cal.overheads))
    if any(t.header.source == "executor" for t in traces.values()):
        # The project's executor keeps a static batch's finished rows in its forwards, and its
        # draft cuts a pre-speculation tree short when the next request is waiting.
        changes["static_batch_rows"] = True
        changes["doorbell"] = True
    settings = {
        "depth": depth,
        "min_samples": min_samples,
        "base": base.name,
        "normalize_speed": normalize_speed and speed is not None,
    }
    changes["provenance"] = _provenance(traces, latency, settings, speed)
    prov = changes["provenance"]
    prov["speed_probe_weight"] = (
        weights.by_group.get("*", (1.0, 0.0))[0] if speed is not None else None
    )
    prov["speed_probe_weights"] = weights.to_dict() if speed is not None else None
    prov["speed_probe_draft_s"] = draft_speed if speed is not None else None
    prov["speed_probe_weights_from"] = probe_weights_from
    prov["speed_probe_weights_fitted"] = fitted.to_dict() if fitted is not None else None
    changes["name"] = name
    changes["description"] = (
        f"Calibrated by python -m ssdsim.calibrate from {len(traces)} trace(s)"
        + (" and a latency file" if latency else "")
        + f"; base profile {base.name!r} for the fields not calibrated."
    )
    cal.profile = dataclasses.replace(base, **changes)
    return cal


def overhead_fields(overheads: dict[str, OverheadFit]) -> dict[str, Any]:
    """Profile fields from the fitted host work per mode (SD's is also the default pair)."""
    if not overheads:
        return {}
    out: dict[str, Any] = {
        "mode_overheads": {m: (f.fixed_s, f.per_seq_s) for m, f in overheads.items()},
        "host_by_batch": {m: f.table for m, f in overheads.items() if f.medians},
    }
    default = overheads.get("sd") or next(iter(overheads.values()))
    out.update(step_overhead_s=default.fixed_s, seq_overhead_s=default.per_seq_s)
    return out
