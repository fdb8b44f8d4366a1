"""The paper's setting (B=1, greedy, 512 tokens) on the paper preset: the optimizer's best policy
against AR, the best SD and the paper's default SSD (k=7, uniform fan-out 3, jit).

Runs ``python -m ssdsim.optimize --profile paper-llama70b-h100 --workload
studies/workloads/paper.json --n-trials 500 --out out/paper`` (resuming the study if it exists),
prints its table, and copies its three figures to ``figures/paper_b1_{history,fan_out,speedups}.png``.

    python studies/paper_b1.py [--n-trials 500]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ssdsim.optimize.cli import main as optimize_main

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-trials", default="500")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "paper")
    args = ap.parse_args(argv)
    workload = ROOT / "studies" / "workloads" / "paper.json"
    argv = [
        "--profile",
        "paper-llama70b-h100",
        "--workload",
        str(workload),
        "--n-trials",
        args.n_trials,
    ]
    optimize_main([*argv, "--out", str(args.out), "--quiet"])
    figures = ROOT / "figures"
    figures.mkdir(exist_ok=True)
    for name in ("history", "fan_out", "speedups"):
        shutil.copyfile(args.out / f"{name}.png", figures / f"paper_b1_{name}.png")
    print(f"copied the figures to {figures}/paper_b1_*.png")


if __name__ == "__main__":
    main()
