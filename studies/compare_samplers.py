"""Which sampler and fan-out families find the best policy in few trials? (benchmark, not a test)

For one profile and workload, runs short in-memory studies with each sampler / family choice and
several sampler seeds (one simulation seed, so every run optimises the same objective), and prints the best search value found after N trials as a fraction of a
reference optimum: the exhaustive best over (k, M, fallback) with the analytic-optimal fan-out
lists (which maximise the hit rate at fixed k and M, hence throughput in this simulator), or the
best value seen anywhere if that is higher. Also prints trials per second of each run.

    python studies/compare_samplers.py --profile paper-llama70b-h100 --n-trials 200 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import time

import optuna

from ssdsim import Policy, Workload, load_profile
from ssdsim.optimize.objective import simulator_for
from ssdsim.optimize.search import prepare, run_study
from ssdsim.optimize.settings import Settings, search_workload
from ssdsim.optimize.theory import allocator

GEO_FREE = {"families": ("geometric", "free"), "miss_families": ("geometric", "free", "same")}
VARIANTS = {
    "tpe+optimal": {"sampler": "tpe"},
    "tpe-multi+optimal": {"sampler": "tpe-multivariate"},
    "random+optimal": {"sampler": "random"},
    "tpe geo/free": {"sampler": "tpe", **GEO_FREE},
    "tpe-multi geo/free": {"sampler": "tpe-multivariate", **GEO_FREE},
    "tpe+optimal no polish": {"sampler": "tpe", "polish_fraction": 0.0},
    "tpe geo/free no polish": {"sampler": "tpe", "polish_fraction": 0.0, **GEO_FREE},
}


def exhaustive(profile, workload, settings) -> tuple[float, str]:
    """Best simulated value over k, M, fallback with analytic lists (same seed as the studies)."""
    sim = simulator_for(profile)
    opt = allocator(profile, workload.temperature)
    best = (0.0, "")
    for k, m, fb in itertools.product(
        range(1, settings.k_max + 1), range(1, settings.m_max + 1), ("jit", "fast")
    ):
        miss = "fast" if fb == "fast" else "jit"
        p = Policy(
            mode="ssd",
            k=k,
            fan_out=opt(k, m, "hit", 1.0),
            fan_out_miss=opt(k, m, miss, 1.0),
            fallback=fb,
        )
        v = sim(p, workload, settings.seed).tokens_per_s
        best = max(best, (v, p.label()))
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="paper-llama70b-h100")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--n-trials", type=int, default=200)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument(
        "--reference", type=float, help="known reference optimum (skips the exhaustive pass)"
    )
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(logging.WARNING)
    profile = load_profile(args.profile)
    workload = Workload(batch_size=args.batch_size)
    base = Settings(n_trials=args.n_trials, storage="memory", progress=False)
    if args.reference:
        ref, ref_label = args.reference, "given"
    else:
        ref, ref_label = exhaustive(profile, search_workload(workload, base), base)
    rows = []
    for name in args.variants.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            settings = dataclasses.replace(base, sampler_seed=seed, **VARIANTS[name])
            t0 = time.perf_counter()
            study, objective = prepare(profile, workload, settings)
            run_study(study, objective, settings)
            dt = time.perf_counter() - t0
            ssd = [
                t
                for t in study.trials
                if t.value is not None and t.user_attrs["result"]["policy"]["mode"] == "ssd"
            ]
            best = max(ssd, key=lambda t: t.value)
            rows.append(
                {
                    "variant": name,
                    "seed": seed,
                    "best": best.value,
                    "label": best.user_attrs["result"]["label"],
                    "trials_per_s": len(study.trials) / dt,
                    "found_at": best.number,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    ref = max([ref] + [r["best"] for r in rows])
    print(f"\nreference optimum {ref:.2f} ({ref_label or 'best seen'})")
    for name in args.variants.split(","):
        rs = [r for r in rows if r["variant"] == name]
        fr = [r["best"] / ref for r in rs]
        print(
            f"{name:20s} best/ref min {min(fr):.4f} mean {sum(fr) / len(fr):.4f}  trials/s {sum(r['trials_per_s'] for r in rs) / len(rs):.1f}"
        )


if __name__ == "__main__":
    main()
