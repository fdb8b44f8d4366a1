"""Regenerate every figure in figures/ from the committed results and the simulator.

    python studies/make_figures.py                 # the closed-loop figures (seconds)
    python studies/make_figures.py --paper         # also the optimizer's paper figures
    python studies/make_figures.py --paper --skip-slow   # paper_b1 only (beyond_paper takes ~15 min)
    python studies/make_figures.py --results studies/results/loop21-avx2 \
        --profile studies/results/loop21-avx2/calibrated.json --figures figures/loop21

Inputs (``--results``, default studies/results/embedded, written by studies/closed_loop.py):
``validation.json`` (python -m ssdsim.validate; with ``validation_replay.json``, its ``--replay``
re-simulation, also predicted_vs_measured_replay), ``closed_loop.json`` (the optimizer's policy
run for real), ``timeline.jsonl`` (a short SSD trace); the profile is ``--profile`` (default:
the calibrated ``embedded-cpu-calibrated`` preset). Predicted curves are simulated here; measured points
come from the results. Figures (small PNGs): speedup_vs_batch, speedup_vs_temperature,
hit_rate_vs_fan_out, predicted_vs_measured, paired_speedups (when closed_loop.json has the paired
stage), fan_out_shapes, timeline (and timeline.chrome.json, for chrome://tracing or ui.perfetto.dev); with --paper,
paper_b1_*.png and paper_sweep*.png (studies/paper_b1.py, studies/beyond_paper.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "studies")]

import figures_lib as fl  # noqa: E402
import predicted_curves as pc  # noqa: E402

from ssdsim.chance import chance_at, coverage  # noqa: E402
from ssdsim.policy import Policy  # noqa: E402
from ssdsim.profile import Profile, load_profile  # noqa: E402
from ssdsim.timeline import chrome_trace, spans  # noqa: E402
from ssdsim.trace import read_trace  # noqa: E402


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def fig_batch(profile: Profile, validation: dict, out: Path) -> Path:
    wl = pc.workload_of(validation)
    pred = pc.speedup_vs_batch(profile, wl, (1, 2, 4, 8, 16))
    meas = pc.measured_speedups(validation["rows"], "batch_size", temperature=0.0)
    return fl.plot_curves(
        pred,
        meas,
        "batch size B",
        "speedup over AR (tokens/s per sequence)",
        "Speedup vs batch size (T=0, best of the validation grid)",
        out / "speedup_vs_batch.png",
        logx=True,
    )


def fig_temperature(profile: Profile, validation: dict, loop: dict | None, out: Path) -> Path:
    wl = pc.workload_of(validation)
    pred = pc.speedup_vs_temperature(profile, wl, (0.0, 0.25, 0.5, 0.75, 1.0))
    meas = pc.measured_speedups(validation["rows"], "temperature", batch_size=1)
    meas = {k: v for k, v in meas.items() if k in ("SD", "SSD")}
    if loop and loop.get("saguaro"):
        meas["SSD + Saguaro sampling"] = [
            (s["temperature"], s["speedup_vs_ar"]) for s in loop["saguaro"]
        ]
    return fl.plot_curves(
        pred,
        meas,
        "temperature T",
        "speedup over AR (B=1)",
        "Speedup vs temperature, with and without Saguaro sampling",
        out / "speedup_vs_temperature.png",
    )


def fig_coverage(profile: Profile, out: Path) -> Path:
    at = chance_at(profile.chance, 0.0)
    cov = at.coverage
    depth = max([len(t) for t in cov.reject_tables] + [len(cov.bonus_table), 16])
    fans = list(range(1, depth + 1))
    k = 8
    tables: dict[str, tuple] = {}
    for j, table in enumerate(cov.reject_tables[:3]):
        law = [1 - cov.beta_reject[min(j, len(cov.beta_reject) - 1)] * f**-cov.r for f in fans]
        tables[f"after rejection at {j}"] = (
            fans,
            list(table) + [float("nan")] * (depth - len(table)),
            law,
        )
    if cov.bonus_table:
        r = cov.r_bonus if cov.r_bonus is not None else cov.r
        law = [1 - cov.beta_bonus * f**-r for f in fans]
        tables["bonus (all accepted)"] = (
            fans,
            list(cov.bonus_table) + [float("nan")] * (depth - len(cov.bonus_table)),
            law,
        )
    if not tables:  # a profile without measured tables: its laws alone
        tables = {
            f"position {j}": (fans, [float("nan")] * depth, coverage(cov, j, k, fans).tolist())
            for j in range(3)
        }
    return fl.plot_coverage(
        tables,
        f"Hit chance vs fan-out ({profile.name}, T=0)\npower law 1 - c = beta_j F^-{cov.r:.2f}",
        out / "hit_rate_vs_fan_out.png",
    )


def fig_fan_out(profile: Profile, loop: dict | None, out: Path) -> Path:
    chosen = Policy.from_dict(loop["chosen"]["policy"]) if loop and loop.get("chosen") else None
    k = chosen.k if chosen is not None and chosen.mode == "ssd" else 4
    shapes = pc.fan_out_shapes(profile, k, chosen)
    return fl.plot_fan_out_shapes(
        shapes, f"Fan-out shapes at k={k} (equal budget)", out / "fan_out_shapes.png"
    )


def fig_timeline(trace_path: Path, out: Path, steps: int = 8) -> Path:
    """The PNG of a few steps, and the same steps as a Chrome trace (timeline.chrome.json)."""
    trace = read_trace(trace_path)
    first = min(4, max(0, len(trace.steps) - steps))  # skip the forced first miss
    pol = Policy.from_dict(trace.header.policy)
    title = f"Draft/target overlap, {pol.label()}, B={trace.header.workload['batch_size']} ({trace.header.source})"
    out.mkdir(parents=True, exist_ok=True)
    chrome = chrome_trace(trace, first, first + steps)
    (out / "timeline.chrome.json").write_text(json.dumps(chrome, separators=(",", ":")) + "\n")
    return fl.plot_timeline(spans(trace, first, first + steps), title, out / "timeline.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=ROOT / "studies" / "results" / "embedded")
    ap.add_argument(
        "--profile", default="embedded-cpu-calibrated", help="calibrated profile (preset or JSON)"
    )
    ap.add_argument("--figures", type=Path, default=ROOT / "figures")
    ap.add_argument("--paper", action="store_true", help="also the optimizer's paper figures")
    ap.add_argument(
        "--skip-slow", action="store_true", help="with --paper: skip beyond_paper (~15 min)"
    )
    args = ap.parse_args(argv)
    profile = load_profile(args.profile)
    validation = _load(args.results / "validation.json")
    loop = _load(args.results / "closed_loop.json")
    written = [fig_coverage(profile, args.figures), fig_fan_out(profile, loop, args.figures)]
    if validation:
        written += [
            fl.plot_predicted_vs_measured(
                validation["rows"], validation, args.figures / "predicted_vs_measured.png"
            ),
            fig_batch(profile, validation, args.figures),
            fig_temperature(profile, validation, loop, args.figures),
        ]
    else:
        print(f"skipped the measured figures: no {args.results / 'validation.json'}")
    # the same runs with the T = 0 points replayed (python -m ssdsim.validate --replay)
    replayed = _load(args.results / "validation_replay.json")
    if replayed:
        written.append(
            fl.plot_predicted_vs_measured(
                replayed["rows"], replayed, args.figures / "predicted_vs_measured_replay.png"
            )
        )
    paired = (loop or {}).get("paired")
    if paired and paired.get("speedup_vs_ar"):
        written.append(
            fl.plot_paired_speedups(
                paired["speedup_vs_ar"],
                paired["speedup_error"],
                args.figures / "paired_speedups.png",
            )
        )
    if (args.results / "timeline.jsonl").is_file():
        written.append(fig_timeline(args.results / "timeline.jsonl", args.figures))
    if args.paper:
        import beyond_paper
        import paper_b1

        paper_b1.main([])
        if not args.skip_slow:
            beyond_paper.main([])
    for p in written:
        print(f"wrote {p} ({p.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
