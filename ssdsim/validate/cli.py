"""Command line of the validation: run the executor on a grid, simulate each point, compare.

    python -m ssdsim.validate --profile calibrated.json --pair embedded --prompts code64 \\
        --num-prompts 8 --max-new-tokens 128 --out out/validate --json
    python -m ssdsim.validate --quick --profile p.json --pair smoke --prompts smoke8 --out /tmp/v

Measured results are cached per point under ``--out`` (rerun the same command to resume);
``--repeats N`` runs the grid N times (pass by pass, so slow drifts in machine load hit every
point alike) and compares with each point's median. ``--json`` ends the output with one JSON
line: the table, ``median_abs_error`` and ``max_abs_error`` (fractions). Never imports torch or
the executor (it runs ``python -m executor.run`` in subprocesses).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ssdsim._schema import SchemaError
from ssdsim.profile import Profile, load_profile
from ssdsim.replay import Replay, load_replay
from ssdsim.validate.compare import SEEDS, format_table, row, summarize, trace_workload
from ssdsim.validate.grid import Point, full_grid, grid, pass_order, quick_grid
from ssdsim.validate.runner import RunSettings, ValidationError, measure


def _list(kind: type, text: str, flag: str) -> tuple:
    try:
        values = tuple(kind(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values:
        raise ValidationError(f"{flag} {text!r}: expected a comma-separated list")
    return values


def prompts_arg(value: str) -> str:
    """``--prompts`` as the runs' cache key holds it: a prompt file by its absolute path (the
    same file named from another directory reuses the runs: loop 18's folder, validated from
    the repository root by a relative path, re-ran 76 cached runs), a set's name as given."""
    path = Path(value)
    return str(path.resolve()) if path.is_file() else value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ssdsim.validate", description=__doc__.splitlines()[0]
    )
    p.add_argument("--profile", required=True, help="calibrated profile JSON or preset name")
    p.add_argument(
        "--grid-profile",
        help="profile whose chance sets the geometric fan-outs of the grid (default: --profile); "
        "keeps the grid's policies (and cached runs) when the predicting profile is refitted",
    )
    p.add_argument("--pair", required=True, help="model pair for python -m executor.run")
    p.add_argument("--prompts", required=True, help="prompt set name or JSON-lines file")
    p.add_argument("--num-prompts", type=int, help="first N prompts (default: all)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=0, help="executor seed (pass r at T > 0: seed + r)")
    p.add_argument(
        "--fixed-seed",
        action="store_true",
        help="every pass at T > 0 samples with --seed (as before 2026-12-01; reuses such caches)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("out/validate"), help="cache folder (default: %(default)s)"
    )
    p.add_argument(
        "--quick", action="store_true", help="four points (AR, SD, SSD jit and fast; B=1, T=0)"
    )
    p.add_argument("--ks", help="lookaheads (default 2,4,6,8)")
    p.add_argument("--batch-sizes", help="default 1,4")
    p.add_argument("--temperatures", help="default 0,1")
    p.add_argument("--modes", help="subset of ar,sd,ssd (default all)")
    p.add_argument("--shapes", help="subset of uniform,geometric (default both)")
    p.add_argument("--fallbacks", help="subset of jit,fast (default both)")
    p.add_argument("--repeats", type=int, default=1, help="runs per point (median); default 1")
    p.add_argument(
        "--seeds",
        type=int,
        default=SEEDS,
        help=f"simulator seeds per point (mean); default {SEEDS}",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per executor run")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=300.0,
        help="seconds to wait for a quiet machine before each run (0: never wait); default 300",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="reruns of a run other processes disturbed (the least disturbed is kept); default 2",
    )
    p.add_argument(
        "--replay",
        help="greedy texts of the prompts (python -m executor.replay): T = 0 points replay their "
        "accepted lengths and hits from them instead of sampling the profile's chance; the table "
        "goes to validation_replay.json",
    )
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    return p


def points_from_args(args: argparse.Namespace, profile: Profile) -> list[Point]:
    if args.quick:
        modes = _list(str, args.modes or "ar,sd,ssd", "--modes")
        return [p for p in quick_grid(profile) if p.policy.mode in modes]
    if not any(
        (args.ks, args.batch_sizes, args.temperatures, args.modes, args.shapes, args.fallbacks)
    ):
        return full_grid(profile)
    kw: dict[str, Any] = {
        "ks": _list(int, args.ks or "2,4,6,8", "--ks"),
        "batch_sizes": _list(int, args.batch_sizes or "1,4", "--batch-sizes"),
        "temperatures": _list(float, args.temperatures or "0,1", "--temperatures"),
        "modes": _list(str, args.modes or "ar,sd,ssd", "--modes"),
        "shapes": _list(str, args.shapes or "uniform,geometric", "--shapes"),
        "fallbacks": _list(str, args.fallbacks or "jit,fast", "--fallbacks"),
    }
    for flag, allowed in (
        ("modes", {"ar", "sd", "ssd"}),
        ("shapes", {"uniform", "geometric"}),
        ("fallbacks", {"jit", "fast"}),
    ):
        bad = set(kw[flag]) - allowed
        if bad:
            raise ValidationError(
                f"--{flag}: unknown {sorted(bad)}, expected a subset of {sorted(allowed)}"
            )
    return grid(profile, **kw)


def check(
    args: argparse.Namespace,
) -> tuple[Profile, list[Point], RunSettings, Replay | None]:
    """Everything checked before the first run."""
    for name, low in (
        ("max_new_tokens", 1),
        ("repeats", 1),
        ("seeds", 1),
        ("seed", 0),
        ("retries", 0),
    ):
        if getattr(args, name) < low:
            raise ValidationError(
                f"--{name.replace('_', '-')} {getattr(args, name)}: expected an integer >= {low}"
            )
    if args.num_prompts is not None and args.num_prompts < 1:
        raise ValidationError(f"--num-prompts {args.num_prompts}: expected an integer >= 1")
    profile = load_profile(args.profile)
    pts = points_from_args(args, load_profile(args.grid_profile) if args.grid_profile else profile)
    if args.quiet_wait < 0:
        raise ValidationError(f"--quiet-wait {args.quiet_wait}: expected seconds >= 0")
    settings = RunSettings(
        args.pair,
        prompts_arg(args.prompts),
        args.num_prompts,
        args.max_new_tokens,
        args.seed,
        args.timeout,
        quiet_cores=0.5 if args.quiet_wait > 0 else None,
        retries=args.retries,
        quiet_timeout_s=args.quiet_wait,
        vary_seed=not args.fixed_seed,
    )
    replay = load_replay(args.replay) if args.replay else None
    return profile, pts, settings, replay


def run(
    profile: Profile,
    pts: list[Point],
    settings: RunSettings,
    out: Path,
    repeats: int,
    seeds: int,
    replay: Replay | None = None,
) -> tuple[list[dict], dict]:
    """Measure every point (pass by pass), then simulate and compare."""
    records: dict[str, list[dict]] = {p.key: [] for p in pts}
    with tqdm(total=len(pts) * repeats, desc="validate", unit="run") as bar:
        for r in range(repeats):
            for p in pass_order(pts, r, repeats):
                bar.set_postfix_str(p.label)
                records[p.key].append(measure(p, settings, out, r))
                bar.update()
    rows = [row(profile, records[p.key], seeds, replay) for p in pts]
    summary = summarize(rows)
    summary["replay"] = replay.source if replay is not None else None
    summary["workload"] = trace_workload(records[pts[0].key][0]["trace"]).to_dict()
    summary["settings"] = settings.as_dict()
    return rows, summary


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        profile, pts, settings, replay = check(args)
        rows, summary = run(profile, pts, settings, args.out, args.repeats, args.seeds, replay)
    except (SchemaError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows, summary))
    out = {**summary, "profile": profile.name, "rows": rows}
    name = "validation_replay.json" if replay is not None else "validation.json"
    (args.out / name).write_text(json.dumps(out, indent=1))
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
