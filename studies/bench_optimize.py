"""Optimizer speed: trials per second of one study (benchmark, not a test).

Runs a fresh study of ``--n-trials`` trials in a throw-away journal file (the default storage
kind) and prints one JSON object: trials, search seconds (study.optimize only), total seconds
(with re-evaluation), trials per second. Goal: 500 trials in under 2 minutes at B=1.

    python studies/bench_optimize.py --profile embedded-cpu --n-trials 500
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import optuna

from ssdsim import Workload, load_profile
from ssdsim.optimize.search import prepare, run_study
from ssdsim.optimize.select import summarize
from ssdsim.optimize.settings import Settings


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="embedded-cpu")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--n-trials", type=int, default=500)
    ap.add_argument("--sampler", default="tpe")
    ap.add_argument("--storage", help="default: a journal file in a temporary directory")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(logging.WARNING)
    profile = load_profile(args.profile)
    workload = Workload(batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        storage = args.storage or str(Path(tmp) / "bench.journal")
        settings = Settings(
            n_trials=args.n_trials, storage=storage, sampler=args.sampler, progress=False
        )
        t0 = time.perf_counter()
        study, objective = prepare(profile, workload, settings)
        run_study(study, objective, settings)
        t1 = time.perf_counter()
        result = summarize(study, profile, workload, settings, objective.simulate)
        t2 = time.perf_counter()
        n = len(study.get_trials(deepcopy=False))
    print(
        json.dumps(
            {
                "profile": profile.name,
                "batch_size": args.batch_size,
                "sampler": args.sampler,
                "trials": n,
                "search_s": round(t1 - t0, 2),
                "total_s": round(t2 - t0, 2),
                "trials_per_s": round(n / (t1 - t0), 2),
                "best": result.best.label,
                "best_tokens_per_s": round(result.best.tokens_per_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
