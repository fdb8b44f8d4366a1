"""Command line of the calibration.

    python -m ssdsim.calibrate out/*.jsonl --latency latency.json -o calibrated.json
    python -m ssdsim.calibrate run.jsonl --base paper-llama70b-h100 --name mine -o mine.json

Reads every trace and the latency file first (bad input exits with status 2, the message names
the file and the problem), fits, prints the residual report and writes the profile.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ssdsim._schema import SchemaError
from ssdsim.calibrate.core import calibrate
from ssdsim.calibrate.report import format_report
from ssdsim.profile import LatencyMeasurements, load_profile


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ssdsim.calibrate",
        description="Fit a Profile (acceptance, coverage, latency) to executor traces.",
    )
    p.add_argument(
        "traces", nargs="+", help="trace files (JSON lines) from python -m executor.run --trace"
    )
    p.add_argument("--latency", type=Path, help="latency file from python -m executor.profile")
    p.add_argument(
        "--base",
        default="embedded-cpu",
        help="profile for the fields not calibrated (default: %(default)s)",
    )
    p.add_argument("--name", default="calibrated", help="name of the new profile")
    p.add_argument(
        "--depth",
        type=int,
        default=32,
        help="coverage table length F = 1..depth (default: %(default)s)",
    )
    p.add_argument(
        "--min-samples",
        type=int,
        default=30,
        help="rows a position needs for its own measured table (default: %(default)s)",
    )
    p.add_argument(
        "--raw-speed",
        action="store_true",
        help="fit the traces' times as measured (default: each trace with a speed probe is first "
        "brought to the median probe's speed)",
    )
    p.add_argument(
        "--probe-weights",
        choices=("auto", "measured", "fitted"),
        default="auto",
        help="how far step times follow the speed probes: the weights measured once "
        "(ssdsim.calibrate.speed.MEASURED_WEIGHTS) or fitted on these traces; auto: measured "
        "when every trace was probed between batches, else fitted (default: %(default)s)",
    )
    p.add_argument("-o", "--out", type=Path, required=True, help="profile JSON to write")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        if args.depth < 1 or args.min_samples < 1:
            raise SchemaError(
                f"--depth and --min-samples: expected integers >= 1, got {args.depth}, {args.min_samples}"
            )
        latency = LatencyMeasurements.load(args.latency) if args.latency else None
        base = load_profile(args.base)
        cal = calibrate(
            args.traces,
            latency,
            base,
            name=args.name,
            depth=args.depth,
            min_samples=args.min_samples,
            normalize_speed=not args.raw_speed,
            probe_weights_from=args.probe_weights,
        )
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(cal))
    cal.profile.save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
