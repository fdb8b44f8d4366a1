"""Predicted against measured: simulate each measured point on the same workload, and the errors.

``predict`` simulates a point's policy on the workload its trace header records (prompts, output
length, batch size, temperature, seed), averaged over ``seeds`` simulator seeds. ``compare``
turns cached records into table rows (measured: the median over repeats) and the summary:
``median_abs_error`` and ``max_abs_error`` of the relative throughput error (predicted /
measured - 1, per sequence tokens/s), the same for the speedup over AR at the same (B, T) (a
ratio within one pass: the machine's slow drifts cancel) and for the hit rate (absolute, SSD
points only). With repeats, each row's ``spread`` ((max - min) / median of its passes' tokens/s)
and the summary's ``repeat_spread_median`` / ``repeat_spread_max`` say how far the measurement
itself moves between passes: an error below that spread is within the machine's noise
(``inside_passes``: the prediction lies between the slowest and the fastest pass). Each pass
is also predicted twice (``pass_errors``): by the simulator, and by the mean of the point's
other passes; the summary's ``pass_median_abs_error`` and ``repeat_median_abs_error`` pool
them: the second is how well the machine repeats itself, a floor for any predictor; the
summary's ``noise_floor`` (``ssdsim.validate.floor``) turns it into the median and max errors a
perfect prediction would score against the median of the passes.
``target_speed`` (AR and SD points) says how fast the machine ran during a point's runs: the
target's measured verification time over the profile's (1: as in the calibration runs; 1.15:
15% slower), so that an error common to every point reads as the machine's, not the model's.

``speed`` is the same question asked before the fact, for every mode: a pass's speed probes
(``executor.run --speed-probe``: target forwards, and SSD's draft's on its own core, just before
and after decoding and between batches) over the calibration runs' (``provenance.speed_probe_s``
and ``speed_probe_draft_s`` of the profile), stretch by stretch of the run, to the profile's
weights for the run's (mode, batch) group (``pass_speed``). ``adjusted_error`` compares the
prediction with each pass's tokens/s times its ``speed`` (the pass as it would have run at the
calibration's speed); the summary's ``adjusted_*`` keys pool those. Both are reported: the
plain error is what a user of the profile sees on a machine that drifts; the adjusted one is the
model's own, with the drift the probe saw taken out. Points without probes have no adjusted error.

With a replay of the prompts' greedy texts (``ssdsim.replay``, ``--replay``), T = 0 points with
greedy drafting are simulated with their accepted lengths and hits replayed from the texts
(``replayed`` in the row): what is left of their error is timing and the machine.
Never torch or the executor.
"""

from __future__ import annotations

import statistics
from typing import Any

from scipy.stats import trim_mean

from ssdsim import latency as lat
from ssdsim._schema import SchemaError
from ssdsim.calibrate.speed import (
    ProbeWeights,
    run_slowdown,
    stretch_slowdowns,
    stretches,
)
from ssdsim.calibrate.trace_costs import step_records
from ssdsim.policy import Policy
from ssdsim.profile import Profile
from ssdsim.replay import Replay, applies
from ssdsim.simulator import simulate
from ssdsim.trace import iter_records, read_trace
from ssdsim.validate.floor import noise_floor
from ssdsim.workload import Workload


def trace_workload(trace_path: str) -> Workload:
    """The workload a trace's header records (the first record of the file)."""
    kind, rec = next(iter_records(trace_path))
    if kind != "header":
        raise SchemaError(f"{trace_path}: the first record is a {kind}, expected the header")
    return Workload.from_dict(rec["workload"])


# A measured run decodes a dozen fixed prompts; the simulator draws that many sequences, each
# with its own acceptance (the run and coverage spreads), so one seed's tokens per step moves
# by several percent (loop 16's profile, SD k=8 B=1 T=0, 12 sequences: 3.16-3.96 over 8 seeds,
# 7% sd). The mean of 32 seeds is within about 1.3% of the expectation; 4 seeds left loop
# 16's tokens per step 2.5% median off, 32 seeds 1.8%.
SEEDS = 32


def predict(
    profile: Profile,
    policy: Policy,
    workload: Workload,
    seeds: int = SEEDS,
    replay: Replay | None = None,
) -> dict[str, Any]:
    """Mean simulated tokens/s (per sequence and for the batch) and hit rate over ``seeds`` seeds
    (``replay``: outcomes replayed from the workload's greedy texts, ``ssdsim.replay``)."""
    runs = [
        simulate(profile, policy, workload, seed=workload.seed + i, replay=replay)
        for i in range(seeds)
    ]
    hits = [r.hit_rate for r in runs if r.hit_rate is not None]
    return {
        "tokens_per_s": statistics.fmean(r.tokens_per_s for r in runs),
        "batch_tokens_per_s": statistics.fmean(r.batch_tokens_per_s for r in runs),
        "hit_rate": statistics.fmean(hits) if hits else None,
        "tokens_per_step": statistics.fmean(r.tokens_per_step for r in runs),
    }


def target_speed(profile: Profile, trace_path: str) -> float | None:
    """An AR or SD executor run's target verification time over ``profile``'s (None otherwise).

    Trimmed means (2% each side) over the full-batch steps, as the calibration fits its scales:
    1 on the calibration runs themselves, above 1 when the machine ran slower.
    """
    trace = read_trace(trace_path)
    if trace.header.source != "executor" or trace.header.policy.get("mode") not in ("ar", "sd"):
        return None
    steps = step_records(trace)
    if not steps:
        return None
    model = [
        lat.forward_s(profile.target, s["batch"], s["k"] + 1, s["context"] + s["k"] + 1)
        for s in steps
    ]
    return float(trim_mean([s["verify_s"] for s in steps], 0.02) / trim_mean(model, 0.02))


def pass_speed(profile: Profile, record: dict[str, Any]) -> float | None:
    """A pass's slowdown against the calibration runs' speed (``provenance.speed_probe_s`` and
    ``speed_probe_draft_s``): 1.1, the machine 10% slower than when the profile's latency was
    fitted. Judged stretch by stretch of the run where its probe has marks between batches, by
    the profile's probe weights for the run's (mode, batch) group (``ssdsim.calibrate.speed``);
    None without both probes."""
    prov = profile.provenance
    ref = prov.get("speed_probe_s")
    measured = record.get("measured") or {}
    spans = stretches(measured.get("speed_probe"))
    if not ref or not spans:
        return None
    weights = ProbeWeights.from_provenance(prov).get(
        str(record["policy"].get("mode")), int(record.get("batch_size", 1))
    )
    slow = stretch_slowdowns(spans, float(ref), prov.get("speed_probe_draft_s"), weights)
    marks = measured["speed_probe"].get("marks") or []
    end_s = float(marks[-1]["clock_s"]) if len(marks) >= 2 else 0.0
    return run_slowdown(spans, slow, end_s) if end_s > 0 else slow[0]


def _spread(passes: list[float]) -> float | None:
    """(max - min) / median of a point's passes; None with fewer than two."""
    if len(passes) < 2:
        return None
    return (max(passes) - min(passes)) / statistics.median(passes)


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def row(
    profile: Profile, records: list[dict[str, Any]], seeds: int, replay: Replay | None = None
) -> dict[str, Any]:
    """One table row from the repeats of a point (``replay``: used at T = 0 points)."""
    first = records[0]
    policy = Policy.from_dict(first["policy"])
    workload = trace_workload(first["trace"])
    replayed = replay is not None and applies(policy, workload)
    pred = predict(profile, policy, workload, seeds, replay if replayed else None)
    meas = {
        n: _median([r["measured"].get(n) for r in records])
        for n in ("tokens_per_s", "batch_tokens_per_s", "hit_rate", "tokens_per_step")
    }
    err = pred["tokens_per_s"] / meas["tokens_per_s"] - 1.0 if meas["tokens_per_s"] else None
    timed = [r for r in records if r["measured"].get("tokens_per_s")]
    passes = [r["measured"]["tokens_per_s"] for r in timed]
    speeds = [pass_speed(profile, r) for r in timed]
    adjusted = (
        [p * v for p, v in zip(passes, speeds, strict=True)]
        if passes and None not in speeds
        else []
    )
    many = len(passes) >= 2
    spread = _spread(passes)
    inside = min(passes) <= pred["tokens_per_s"] <= max(passes) if many else None
    pass_errors: dict[str, list[float]] = {}
    for name, values in (("", passes), ("_adjusted", adjusted)):
        sim, rest = pass_errors.setdefault(f"simulator{name}", []), []
        pass_errors[f"other_passes{name}"] = rest
        for i, p in enumerate(values if len(values) >= 2 else []):
            sim.append(abs(pred["tokens_per_s"] / p - 1.0))
            rest.append(abs(statistics.fmean(values[:i] + values[i + 1 :]) / p - 1.0))
    adj = statistics.median(adjusted) if adjusted else None
    tps = meas["tokens_per_step"]
    step_err = pred["tokens_per_step"] / tps - 1.0 if tps else None
    hit_err = (
        pred["hit_rate"] - meas["hit_rate"]
        if pred["hit_rate"] is not None and meas["hit_rate"] is not None
        else None
    )
    return {
        "key": first["key"].rsplit("_r", 1)[0],
        "label": first["label"],
        "mode": policy.mode,
        "batch_size": first["batch_size"],
        "temperature": first["temperature"],
        "repeats": len(records),
        "replayed": replayed,
        "measured": meas,
        "predicted": pred,
        "error": err,
        "speed": statistics.median(speeds) if adjusted else None,
        "adjusted_measured": adj,
        "adjusted_error": pred["tokens_per_s"] / adj - 1.0 if adj else None,
        "adjusted_spread": _spread(adjusted),
        "hit_rate_error": hit_err,
        "tokens_per_step_error": step_err,
        "spread": spread,
        "inside_passes": inside,
        "pass_errors": pass_errors,
        "load_avg_1m": statistics.fmean(sum(r["load_avg_1m"]) / 2 for r in records),
        "foreign_cores": _median([r.get("foreign_cores") for r in records]),
        "target_speed": _median([target_speed(profile, r["trace"]) for r in records])
        if policy.mode in ("ar", "sd")
        else None,
    }


def add_speedup_errors(rows: list[dict[str, Any]]) -> None:
    """Each SD/SSD row's error on its speedup over AR at the same (B, T) (``speedup_error``).

    A ratio of two runs of the same pass: slow drifts of the machine's speed cancel out.
    """

    def at(r: dict[str, Any]) -> tuple:
        return r.get("batch_size"), r.get("temperature")

    ar = {at(r): r for r in rows if r.get("mode") == "ar"}
    for r in rows:
        base = ar.get(at(r))
        r["speedup_error"] = None
        if r.get("mode") != "ar" and base is not None and r["measured"]["tokens_per_s"]:
            pred = r["predicted"]["tokens_per_s"] / base["predicted"]["tokens_per_s"]
            meas = r["measured"]["tokens_per_s"] / base["measured"]["tokens_per_s"]
            r["speedup_error"] = pred / meas - 1.0


def _stats(values: list[float]) -> tuple[float | None, float | None]:
    return (statistics.median(values), max(values)) if values else (None, None)


def group_bias(rows: list[dict[str, Any]], error: str = "error") -> dict[str, float]:
    """Median signed throughput error (``error``: the row's key) per group of points (mode, B,
    T), e.g. ``"sd B=1 T=0"``: where the model leans one way, which a median of absolute errors
    hides."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        if r.get(error) is None or None in (
            r.get(n) for n in ("mode", "batch_size", "temperature")
        ):
            continue
        key = (r["mode"], int(r["batch_size"]), float(r["temperature"]))
        groups.setdefault(key, []).append(r[error])
    return {f"{m} B={b} T={t:g}": statistics.median(v) for (m, b, t), v in sorted(groups.items())}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and max absolute errors (throughput and speedup: relative; hit rate: absolute)."""
    add_speedup_errors(rows)
    errs = _stats([abs(r["error"]) for r in rows if r["error"] is not None])
    hits = _stats([abs(r["hit_rate_error"]) for r in rows if r["hit_rate_error"] is not None])
    ups = _stats([abs(r["speedup_error"]) for r in rows if r.get("speedup_error") is not None])
    steps = _stats(
        [
            abs(e)
            for r in rows
            if r.get("mode") != "ar" and (e := r.get("tokens_per_step_error")) is not None
        ]
    )
    adjusted = _stats(
        [abs(r["adjusted_error"]) for r in rows if r.get("adjusted_error") is not None]
    )
    adj_spreads = _stats(
        [r["adjusted_spread"] for r in rows if r.get("adjusted_spread") is not None]
    )
    machine = [r["speed"] for r in rows if r.get("speed") is not None]
    spreads = _stats([r["spread"] for r in rows if r.get("spread") is not None])
    inside = [r["inside_passes"] for r in rows if r.get("inside_passes") is not None]
    speeds = [r["target_speed"] for r in rows if r.get("target_speed") is not None]
    per_pass = {
        who: [e for r in rows for e in (r.get("pass_errors") or {}).get(who, [])]
        for who in ("simulator", "other_passes", "simulator_adjusted", "other_passes_adjusted")
    }
    return {
        "points": len(rows),
        "median_abs_error": errs[0],
        "max_abs_error": errs[1],
        "hit_rate_median_abs_error": hits[0],
        "hit_rate_max_abs_error": hits[1],
        "speedup_median_abs_error": ups[0],
        "speedup_max_abs_error": ups[1],
        "tokens_per_step_median_abs_error": steps[0],
        "tokens_per_step_max_abs_error": steps[1],
        "repeat_spread_median": spreads[0],
        "repeat_spread_max": spreads[1],
        "inside_passes": sum(inside) if inside else None,
        "pass_median_abs_error": _stats(per_pass["simulator"])[0],
        "repeat_median_abs_error": _stats(per_pass["other_passes"])[0],
        "target_speed_median": statistics.median(speeds) if speeds else None,
        "target_speed_range": [min(speeds), max(speeds)] if speeds else None,
        "group_bias": group_bias(rows),
        "adjusted_points": sum(r.get("adjusted_error") is not None for r in rows),
        "adjusted_median_abs_error": adjusted[0],
        "adjusted_max_abs_error": adjusted[1],
        "adjusted_spread_median": adj_spreads[0],
        "adjusted_spread_max": adj_spreads[1],
        "adjusted_pass_median_abs_error": _stats(per_pass["simulator_adjusted"])[0],
        "adjusted_repeat_median_abs_error": _stats(per_pass["other_passes_adjusted"])[0],
        "speed_median": statistics.median(machine) if machine else None,
        "speed_range": [min(machine), max(machine)] if machine else None,
        "adjusted_group_bias": group_bias(rows, "adjusted_error"),
        "noise_floor": noise_floor(rows, "other_passes"),
        "adjusted_noise_floor": noise_floor(rows, "other_passes_adjusted"),
        "adjusted_noise_floor_15": noise_floor(rows, "other_passes_adjusted", passes=15),
    }


def format_table(rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    head = f"{'point':44s} {'measured':>9s} {'predicted':>9s} {'error':>7s} {'adjusted':>8s} {'speedup':>7s}  {'hit meas':>8s} {'hit pred':>8s} {'other':>5s}"
    lines = [head, "-" * len(head)]
    if summary.get("replay"):
        lines.insert(0, f"T = 0 points: outcomes replayed from {summary['replay']} (greedy texts)")
    for r in rows:
        m, p = r["measured"], r["predicted"]
        hm = f"{m['hit_rate']:.3f}" if m["hit_rate"] is not None else "-"
        hp = f"{p['hit_rate']:.3f}" if p["hit_rate"] is not None else "-"
        err = f"{r['error']:+.1%}" if r["error"] is not None else "-"
        up = f"{r['speedup_error']:+.1%}" if r.get("speedup_error") is not None else "-"
        adj = f"{r['adjusted_error']:+.1%}" if r.get("adjusted_error") is not None else "-"
        other = f"{r['foreign_cores']:.2f}" if r.get("foreign_cores") is not None else "-"
        lines.append(
            f"{r['label']:44s} {m['tokens_per_s']:9.1f} {p['tokens_per_s']:9.1f} {err:>7s} {adj:>8s} {up:>7s}  {hm:>8s} {hp:>8s} {other:>5s}"
        )
    s = summary
    if s["median_abs_error"] is not None:
        lines.append(
            f"throughput (tokens/s per sequence): median |error| {s['median_abs_error']:.1%}, max {s['max_abs_error']:.1%} over {s['points']} points"
        )
    if s.get("adjusted_median_abs_error") is not None:
        lo, hi = s["speed_range"]
        line = (
            f"adjusted for the machine's speed (probes around each run and between its batches; x{s['speed_median']:.3f} the calibration's, "
            f"{lo:.3f}-{hi:.3f}): median |error| {s['adjusted_median_abs_error']:.1%}, max "
            f"{s['adjusted_max_abs_error']:.1%} over {s['adjusted_points']} points"
        )
        if s.get("adjusted_spread_median") is not None:  # with repeats
            line += (
                f"; passes spread {s['adjusted_spread_median']:.1%} (median); one pass by the "
                f"simulator {s['adjusted_pass_median_abs_error']:.1%}, by the other passes "
                f"{s['adjusted_repeat_median_abs_error']:.1%}"
            )
        lines.append(line)
        if s.get("adjusted_group_bias"):
            lines.append(
                "adjusted signed error by group: "
                + ", ".join(f"{g} {e:+.1%}" for g, e in s["adjusted_group_bias"].items())
            )
    if s.get("speedup_median_abs_error") is not None:
        lines.append(
            f"speedup over AR at the same (B, T), same pass: median |error| {s['speedup_median_abs_error']:.1%}, max {s['speedup_max_abs_error']:.1%}"
        )
    if s.get("repeat_spread_median") is not None:
        lines.append(
            f"measurement noise: passes of one point spread by {s['repeat_spread_median']:.1%} (median), "
            f"{s['repeat_spread_max']:.1%} (max); prediction inside the passes' range at "
            f"{s['inside_passes']} of {s['points']} points"
        )
    if s.get("pass_median_abs_error") is not None:
        lines.append(
            f"one pass predicted by the simulator: median |error| {s['pass_median_abs_error']:.1%}; "
            f"by the mean of the point's other passes: {s['repeat_median_abs_error']:.1%} "
            "(how well the machine repeats itself)"
        )
    floors = [
        (name, f)
        for name, f in (
            ("as measured", s.get("noise_floor")),
            ("probed speed", s.get("adjusted_noise_floor")),
            ("probed speed, 15 passes", s.get("adjusted_noise_floor_15")),
        )
        if f is not None
    ]
    if floors:
        lines.append(
            "noise floor (a simulator exactly right, judged as above; ssdsim.validate.floor): "
            + "; ".join(
                f"{name} median |error| {f['median_abs_error']:.1%}, max {f['max_abs_error']:.1%} "
                f"(p10-p90 {f['max_abs_error_p10_p90'][0]:.1%}-{f['max_abs_error_p10_p90'][1]:.1%}), "
                f"within 3% / 8% at {f['within_3pct']:.0f} / {f['within_8pct']:.0f} points"
                for name, f in floors
            )
        )
    if s.get("target_speed_median") is not None:
        lo, hi = s["target_speed_range"]
        lines.append(
            f"machine: the target's verification ran x{s['target_speed_median']:.3f} the profile's time "
            f"(AR and SD points, median; {lo:.3f}-{hi:.3f}; 1 = as fast as in the calibration runs)"
        )
    if s.get("tokens_per_step_median_abs_error") is not None:
        lines.append(
            f"tokens per step (SD and SSD; no timing in it): median |error| {s['tokens_per_step_median_abs_error']:.1%}, "
            f"max {s['tokens_per_step_max_abs_error']:.1%}"
        )
    if s["hit_rate_median_abs_error"] is not None:
        lines.append(
            f"hit rate: median |error| {s['hit_rate_median_abs_error']:.3f}, max {s['hit_rate_max_abs_error']:.3f} (absolute)"
        )
    if s.get("group_bias"):
        lines.append(
            "signed error by group (median; + predicted too fast): "
            + ", ".join(f"{g} {e:+.1%}" for g, e in s["group_bias"].items())
        )
    lines.append(
        "(tokens/s per sequence, measured: median over repeats; other: cores used by other processes during the run)"
    )
    return "\n".join(lines)
