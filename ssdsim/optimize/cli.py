"""``python -m ssdsim.optimize``: find the best SSD policy for a profile, batch size and temperature.

Examples::

    python -m ssdsim.optimize                                  # embedded-cpu-calibrated, B=1, T=0
    python -m ssdsim.optimize --profile paper-llama70b-h100 --n-trials 500 --out out/paper
    python -m ssdsim.optimize --batch-sizes 1,4,16 --temperatures 0,1.0   # a sweep, one study per point

Every input is checked before any study starts; bad input exits with status 2 and a message
naming the flag or file. A study is kept in the default storage (see ``storage.py``): rerun the
same command after a Ctrl-C or a kill to resume it. Never imports torch, executor or kernels.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import optuna

from ssdsim._schema import SchemaError
from ssdsim.optimize import report
from ssdsim.optimize.plots import write_figures
from ssdsim.optimize.search import optimize
from ssdsim.optimize.settings import (
    OBJECTIVES,
    SAMPLERS,
    Settings,
    reeval_workload,
    search_workload,
    space_for,
)
from ssdsim.optimize.storage import describe_storage, open_storage
from ssdsim.optimize.sweep import run_sweep
from ssdsim.policy import FALLBACKS, Policy
from ssdsim.profile import Profile, load_profile
from ssdsim.replay import load_replay
from ssdsim.sim.plan import make_plan
from ssdsim.workload import Workload

log = logging.getLogger("ssdsim.optimize")
DEFAULT_PROFILE = "embedded-cpu-calibrated"
DEFAULT_OUT = Path("out/optimize")
K_MAX = 16
EPILOG = """examples:
  python -m ssdsim.optimize                                   # embedded-cpu-calibrated, B=1, T=0
  python -m ssdsim.optimize --profile paper-llama70b-h100 --n-trials 500 --out out/paper
  python -m ssdsim.optimize --batch-sizes 1,4,16 --temperatures 0,1   # one study per point

Studies persist (default storage above): rerun a command to resume it or to reprint its answer.
At a fixed batch size 'auto' equals jit or fast, so it is searched only when --fallbacks names it;
a sweep reports the batch size from which fast beats jit (auto's threshold)."""
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_UNITS.update({"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40})


def parse_bytes(text: str) -> int:
    """``8589934592``, ``8GiB``, ``512MB`` -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*", text.lower())
    value = int(float(m.group(1)) * _UNITS[m.group(2) or ""]) if m else 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"got {text!r}, expected a positive number of bytes like 8589934592, 8GiB or 512MB"
        )
    return value


def _list_of(kind: type, what: str, minimum: float) -> object:
    def parse(text: str) -> tuple:
        try:
            values = tuple(kind(x) for x in text.split(",") if x.strip())
        except ValueError:
            values = ()
        if not values or any(v < minimum for v in values):
            raise argparse.ArgumentTypeError(
                f"got {text!r}, expected comma-separated {what} >= {minimum:g}, e.g. 1,2,4"
            )
        return values

    return parse


def _positive(kind: type, minimum: float) -> object:
    def parse(text: str) -> float:
        try:
            v = kind(text)
        except ValueError:
            v = None
        if v is None or v < minimum:
            raise argparse.ArgumentTypeError(
                f"got {text!r}, expected a {kind.__name__} >= {minimum:g}"
            )
        return v

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ssdsim.optimize",
        description="Find the SSD (Saguaro) policy with the highest simulated decode throughput for a\n"
        "profile, batch size and temperature, beside AR, the best SD and the paper's default SSD.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help="preset name or profile JSON (default: %(default)s)",
    )
    p.add_argument(
        "--workload",
        type=Path,
        help="workload JSON (default: 128-token prompts, 256 output tokens)",
    )
    p.add_argument(
        "--batch-size", type=_positive(int, 1), help="B (overrides the workload's; default 1)"
    )
    p.add_argument(
        "--temperature", type=_positive(float, 0), help="T (overrides the workload's; default 0)"
    )
    p.add_argument(
        "--batch-sizes",
        type=_list_of(int, "integers", 1),
        help="sweep: batch sizes, e.g. 1,2,4,8,16,32",
    )
    p.add_argument(
        "--temperatures",
        type=_list_of(float, "numbers", 0),
        help="sweep: temperatures, e.g. 0,0.7,1.0",
    )
    p.add_argument(
        "--n-trials",
        type=_positive(int, 1),
        default=200,
        help="finished trials per study (default: %(default)s)",
    )
    p.add_argument(
        "--timeout", type=_positive(float, 1e-9), help="stop each study after this many seconds"
    )
    p.add_argument(
        "--storage",
        help=f"Optuna storage URL or journal path (default: {describe_storage(None)})",
    )
    p.add_argument(
        "--study", help="study name (default: named from profile, workload and settings)"
    )
    p.add_argument(
        "--seed",
        type=_positive(int, 0),
        default=0,
        help="sampler and simulation seed (default: %(default)s)",
    )
    p.add_argument(
        "--cache-memory",
        type=parse_bytes,
        help="draft memory for the speculation cache, bytes (default: the profile's)",
    )
    p.add_argument(
        "--k-max",
        type=_positive(int, 1),
        default=None,
        help=f"largest lookahead searched (default: a calibrated profile's deepest traced "
        f"position, else {K_MAX})",
    )
    p.add_argument(
        "--max-budget",
        type=_positive(int, 1),
        default=256,
        help="largest cache budget M (default: %(default)s)",
    )
    p.add_argument(
        "--fallbacks",
        default="jit,fast",
        help=f"miss fallbacks searched, from {','.join(FALLBACKS)} (default: %(default)s)",
    )
    p.add_argument(
        "--sampler",
        default="tpe",
        choices=SAMPLERS,
        help="default: %(default)s",
    )
    p.add_argument(
        "--replay",
        help="greedy texts of the workload's prompts (python -m executor.replay): at T = 0 the "
        "trials replay their accepted lengths and hits instead of sampling them (the workload "
        "must name those prompts)",
    )
    p.add_argument(
        "--objective",
        default="tokens_per_s",
        choices=OBJECTIVES,
        help="maximise tokens/s per sequence or the batch's tokens/s (throughput; at B > 1 a "
        "static batch waits for its slowest sequence) (default: %(default)s)",
    )
    p.add_argument(
        "--top-n",
        type=_positive(int, 1),
        default=5,
        help="policies re-evaluated (default: %(default)s)",
    )
    p.add_argument(
        "--reeval-seeds",
        type=_positive(int, 1),
        default=4,
        help="seeds of the re-evaluation (default: %(default)s)",
    )
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default: %(default)s)"
    )
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log each step")
    return p


@dataclasses.dataclass(frozen=True)
class Job:
    """Checked inputs of one invocation."""

    profile: Profile
    workload: Workload
    batch_sizes: tuple[int, ...]
    temperatures: tuple[float, ...]
    sweep: bool
    out: Path


def _workload(args: argparse.Namespace) -> Workload:
    if args.batch_size is not None and args.batch_sizes is not None:
        raise SchemaError("--batch-size and --batch-sizes: give one of them")
    if args.temperature is not None and args.temperatures is not None:
        raise SchemaError("--temperature and --temperatures: give one of them")
    workload = Workload.load(args.workload) if args.workload is not None else Workload()
    given = (("batch_size", args.batch_size), ("temperature", args.temperature))
    return dataclasses.replace(workload, **{k: v for k, v in given if v is not None})


def default_k_max(profile: Profile) -> int:
    """The lookaheads a profile can vouch for: a calibrated profile's acceptance is measured up
    to its traces' deepest position (beyond it the simulator would extrapolate), others K_MAX."""
    if str(profile.provenance.get("tool", "")).startswith("python -m ssdsim.calibrate"):
        return max(1, min(K_MAX, len(profile.chance.alpha)))
    return K_MAX


def _settings(args: argparse.Namespace, profile: Profile) -> Settings:
    fallbacks = tuple(f.strip() for f in args.fallbacks.split(",") if f.strip())
    if not fallbacks or any(f not in FALLBACKS for f in fallbacks):
        raise SchemaError(
            f"--fallbacks: got {args.fallbacks!r}, expected a comma-separated subset of {','.join(FALLBACKS)}"
        )
    return Settings(
        n_trials=args.n_trials,
        timeout_s=args.timeout,
        storage=args.storage,
        study=args.study,
        seed=args.seed,
        cache_memory_bytes=args.cache_memory,
        k_max=args.k_max if args.k_max is not None else default_k_max(profile),
        m_max=args.max_budget,
        fallbacks=fallbacks,
        sampler=args.sampler,
        top_n=args.top_n,
        reeval_seeds=args.reeval_seeds,
        progress=not args.quiet,
        objective=args.objective,
        replay=load_replay(args.replay) if args.replay else None,
    )


def check_replay(
    profile: Profile,
    workload: Workload,
    batch_sizes: Sequence[int],
    temperatures: Sequence[float],
    settings: Settings,
) -> None:
    """``--replay`` must serve every T = 0 study's search and re-evaluation workloads (their
    prompts cycled as the workload cycles its prompt set); errors name the problem."""
    if 0 not in temperatures:
        raise SchemaError("--replay: it holds greedy texts, but no study runs at temperature 0")
    for b in batch_sizes:
        work = dataclasses.replace(workload, batch_size=b, temperature=0.0)
        for wl in (search_workload(work, settings), reeval_workload(work, settings)):
            make_plan(profile, Policy(mode="sd", k=settings.k_max), wl, replay=settings.replay)


def check_inputs(args: argparse.Namespace) -> tuple[Job, Settings]:
    """Load and check everything (raises SchemaError naming the problem) before any study starts."""
    profile = load_profile(args.profile)
    workload = _workload(args)
    settings = _settings(args, profile)
    if args.k_max is None and settings.k_max < K_MAX:
        log.info(
            "k up to %d: the deepest position the calibrated profile %s measured (--k-max to change)",
            settings.k_max,
            profile.name,
        )
    if args.out.exists() and not args.out.is_dir():
        raise SchemaError(f"--out: {str(args.out)!r} exists and is not a directory")
    sweep = args.batch_sizes is not None or args.temperatures is not None
    if sweep and args.study:
        raise SchemaError(
            "--study names one study; a sweep runs one study per point (drop --study)"
        )
    batch_sizes = args.batch_sizes or (workload.batch_size,)
    for b in batch_sizes:  # every point's search space must be valid before the first study
        space_for(dataclasses.replace(workload, batch_size=b), settings)
    if args.storage not in (None, "memory"):
        open_storage(args.storage)  # a bad URL or path fails here, not after the first study
    temperatures = args.temperatures or (workload.temperature,)
    if settings.replay is not None:
        check_replay(profile, workload, batch_sizes, temperatures, settings)
    return Job(profile, workload, batch_sizes, temperatures, sweep, args.out), settings


def run_single(job: Job, settings: Settings, plots: bool) -> dict:
    """One study: search, print the table, write policy.json, summary.json and the figures."""
    result = optimize(job.profile, job.workload, settings)
    summary = report.summary_dict(result, job.profile, job.workload, settings)
    paths = report.write_outputs(result, summary, job.out)
    if plots:
        write_figures(result, summary, job.profile, job.out)
    print(report.format_table(summary))
    print(f"\nstudy {result.study_name} ({result.n_trials} trials) in {result.storage}")
    print(
        f"wrote {paths['policy']} and {paths['summary']}"
        + (f" and figures in {job.out}" if plots else "")
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    optuna.logging.set_verbosity(level)
    try:
        job, settings = check_inputs(args)
    except SchemaError as exc:
        parser.exit(2, f"error: {exc}\n")
    t0 = time.perf_counter()
    try:
        if job.sweep:
            run_sweep(job, settings, plots=not args.no_plots)
        else:
            run_single(job, settings, plots=not args.no_plots)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished trials are kept; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    except SchemaError as exc:
        parser.exit(2, f"error: {exc}\n")
    log.info("done in %.1f s", time.perf_counter() - t0)
    return 0
