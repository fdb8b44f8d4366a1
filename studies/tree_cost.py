"""The draft tree's time per step in SSD traces, by tree shape and temperature, folder by folder.

    python studies/tree_cost.py calib=out/loop21/calib/traces valid=out/loop21/validate/traces

For every SSD trace whose summary reports its tree (``draft_tree_mean_s`` over
``draft_tree_depth_mean``): the seconds per tree step, and the same over the draft's speed
probe (``speed_probe.draft_forward_s``: the draft's own core timed around the run), so that
runs at different machine speeds compare. Per (folder, B, k, branches M, T) it prints the
median of each over the traces, and per tree measured at both temperatures what sampling adds
per branch row and step (T>0 median minus greedy median over B x M, in microseconds and in
draft probes). The calibration fits that cost on its own trees
(``ssdsim.calibrate.ssd_costs.fit_tree_sample_row_s``); this says whether the validation's
trees paid the same. With ``--profile`` (calibrated JSON or preset), per (folder, B, k) the
glue decode too (the pre-speculation's first forward, k+1 tokens): the median seconds
measured, beyond the profile's draft forward of that shape, and their ratio; an offset that
stays put across k and B is what ``Profile.prespec_glue_s`` holds:

    python studies/tree_cost.py calib=out/loop21/calib/traces --profile out/loop21/calibrated.json

Never imports torch or the executor.
"""

from __future__ import annotations

import argparse
import logging
import statistics
from collections import defaultdict
from pathlib import Path

from ssdsim.calibrate.ssd_costs import glue_beyond_model_s, tree_shape, tree_step_s
from ssdsim.profile import Profile, load_profile
from ssdsim.trace import Trace, read_trace

log = logging.getLogger("tree_cost")

Key = tuple[str, int, int, int, float]  # folder label, B, k, M, T


def tree_step(trace: Trace) -> tuple[float, float | None] | None:
    """(seconds per tree step, the same over the draft's probe or None) of an SSD trace, or None
    when it reports no tree."""
    step = tree_step_s(trace)
    if step is None:
        return None
    probe = (trace.header.devices.get("speed_probe") or {}).get("draft_forward_s")
    return step, step / float(probe) if probe else None


def key_of(label: str, trace: Trace) -> Key:
    batch, k, fan_out = tree_shape(trace)
    temperature = float(trace.header.workload.get("temperature", 0.0))
    return label, batch, k, sum(int(f) for f in fan_out), temperature


def collect(folders: dict[str, Path]) -> dict[Key, list[tuple[float, float | None]]]:
    """Per key, (seconds per tree step, in draft probes) of each SSD trace in the folders."""
    out: dict[Key, list[tuple[float, float | None]]] = defaultdict(list)
    for label, folder in folders.items():
        paths = sorted(folder.glob("*.jsonl"))
        if not paths:
            raise SystemExit(f"tree_cost: {folder}: no *.jsonl traces")
        for path in paths:
            trace = read_trace(path)
            if trace.header.policy.get("mode") != "ssd":
                continue
            step = tree_step(trace)
            if step is not None:
                out[key_of(label, trace)].append(step)
    return out


def _median(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else float("nan")


def report(steps: dict[Key, list[tuple[float, float | None]]]) -> list[str]:
    """The table's lines: per key the medians; then per tree at both temperatures the cost of
    sampling per branch row and step."""
    lines = [f"{'folder':8s} {'B':>2s} {'k':>2s} {'M':>3s} {'T':>4s} {'runs':>4s} "]
    lines[0] += f"{'ms/step':>8s} {'probes/step':>11s}"
    for key in sorted(steps):
        label, b, k, m, t = key
        runs = steps[key]
        lines.append(
            f"{label:8s} {b:2d} {k:2d} {m:3d} {t:4g} {len(runs):4d} "
            f"{1e3 * _median([s for s, _ in runs]):8.3f} {_median([p for _, p in runs]):11.2f}"
        )
    lines.append("sampling per branch row and step (T>0 minus greedy, same folder and tree):")
    for (label, b, k, m, t), runs in sorted(steps.items()):
        greedy = steps.get((label, b, k, m, 0.0))
        if t == 0 or not greedy:
            continue
        rows = b * m
        us = 1e6 * (_median([s for s, _ in runs]) - _median([s for s, _ in greedy])) / rows
        probes = (_median([p for _, p in runs]) - _median([p for _, p in greedy])) / rows
        lines.append(
            f"{label:8s} B={b} k={k} M={m} T={t:g}: {us:6.1f} us ({probes:.3f} probes) a row"
        )
    return lines


def glue_table(profile: Profile, folders: dict[str, Path]) -> list[str]:
    """Per (folder, B, k) of the SSD traces: the glue decode's median seconds measured, beyond
    the profile's draft forward of k+1 tokens (``Profile.prespec_glue_s`` left out), and the
    median ratio of the two."""
    rows: dict[tuple[str, int, int], list[tuple[float, float]]] = defaultdict(list)
    for label, folder in folders.items():
        for path in sorted(folder.glob("*.jsonl")):
            trace = read_trace(path)
            if trace.header.policy.get("mode") != "ssd" or trace.summary is None:
                continue
            beyond = glue_beyond_model_s(profile, trace)
            if beyond is None:
                continue
            glue = float(trace.summary.extra["draft_glue_mean_s"])
            batch, k, _ = tree_shape(trace)
            rows[(label, batch, k)].append((glue, beyond))
    lines = [f"glue decode against {profile.name}'s draft forward of k+1 tokens:"]
    lines.append(f"{'folder':8s} {'B':>2s} {'k':>2s} {'runs':>4s} {'ms':>6s} {'beyond':>7s} ratio")
    for (label, b, k), runs in sorted(rows.items()):
        ratio = statistics.median(g / (g - e) for g, e in runs if g > e)
        lines.append(
            f"{label:8s} {b:2d} {k:2d} {len(runs):4d} "
            f"{1e3 * statistics.median(g for g, _ in runs):6.2f} "
            f"{1e3 * statistics.median(e for _, e in runs):7.2f} {ratio:5.2f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="LABEL=FOLDER of *.jsonl traces")
    ap.add_argument(
        "--profile",
        help="also the glue decode per (B, k) against this profile's draft forward (JSON or preset)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folders: dict[str, Path] = {}
    for item in args.folders:
        label, sep, folder = item.partition("=")
        if not sep or not label or not folder:
            ap.error(f"expected LABEL=FOLDER, got {item!r}")
        if not Path(folder).is_dir():
            ap.error(f"{folder}: not a folder")
        folders[label] = Path(folder)
    profile = load_profile(args.profile) if args.profile else None
    for line in report(collect(folders)):
        log.info(line)
    if profile is not None:
        for line in glue_table(profile, folders):
            log.info(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
