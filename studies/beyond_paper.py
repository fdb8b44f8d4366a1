"""Beyond the paper: how the best policy for the paper's setup changes with batch size and
temperature, and where SSD stops paying off.

Runs one optimizer study per (B, T) on the ``paper-llama70b-h100`` preset with the paper's
workload shape (512 output tokens), prints the sweep table, and writes
``figures/paper_sweep.png`` (speedup over AR of the best SSD, the best SD and the paper's default
SSD against batch size, per temperature) and ``figures/paper_sweep_policy.png`` (k, budget M,
rescale C and fallback of the best SSD policy). Studies are kept in the default storage, so an
interrupted run resumes. About 10-15 minutes on a shared 2-core machine.

    python studies/beyond_paper.py [--n-trials 200] [--batch-sizes 1,2,4,8,16,32,64,128,256] [--temperatures 0,0.7,1]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import optuna

from ssdsim import Workload, load_profile
from ssdsim.optimize.plots import plot_sweep, plot_sweep_policies
from ssdsim.optimize.settings import Settings
from ssdsim.optimize.sweep import format_sweep, sweep

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-trials", type=int, default=200)
    ap.add_argument("--batch-sizes", default="1,2,4,8,16,32,64,128,256")
    ap.add_argument("--temperatures", default="0,0.7,1")
    ap.add_argument("--storage", help="Optuna storage (default: the optimizer's journal)")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "beyond_paper")
    ap.add_argument("--figures", type=Path, default=ROOT / "figures")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(logging.WARNING)
    profile = load_profile("paper-llama70b-h100")
    workload = Workload.load(ROOT / "studies" / "workloads" / "paper.json")
    settings = Settings(n_trials=args.n_trials, storage=args.storage, progress=False)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    temperatures = [float(t) for t in args.temperatures.split(",")]
    table = sweep(
        profile,
        dataclasses.replace(workload, name="paper"),
        batch_sizes,
        temperatures,
        settings,
        args.out,
    )
    print(format_sweep(table))
    args.figures.mkdir(parents=True, exist_ok=True)
    plot_sweep(table, args.figures / "paper_sweep.png")
    plot_sweep_policies(table, args.figures / "paper_sweep_policy.png")
    print(
        f"\nwrote {args.out / 'sweep.json'}, {args.figures / 'paper_sweep.png'}, {args.figures / 'paper_sweep_policy.png'}"
    )


if __name__ == "__main__":
    main()
