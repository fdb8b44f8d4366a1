"""Stage paired of studies/closed_loop.py, and the paired measurement stage shortlist shares.

``run_paired`` runs ``studies/paired.py`` (policies interleaved prompt by prompt in one process,
rounds with rotated order); ``stage_paired`` measures the loop's choice, the paper default, AR
and the grid points at B=1, T=0 on the validation prompts and gives the verdict from per-round
ratios, with the simulator's speedups over AR against the measured ones. Imports loop_stages.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from loop_stages import LoopConfig, chosen_policy, grid_at_b1_t0, median_rate, workload

from ssdsim.policy import Policy, paper_default
from ssdsim.profile import load_profile
from ssdsim.validate.compare import predict
from ssdsim.validate.runner import ROOT


def paired_ratio(a: list[float], b: list[float]) -> dict[str, float]:
    """Median, min and max over rounds of a[r] / b[r] (two policies' rates in the same rounds)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_ratio: {len(a)} and {len(b)} rounds, expected equal and > 0")
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def paired_verdict(rates: dict[str, list[float]], grid: list[str]) -> dict[str, Any]:
    """The closed loop's verdict from one paired measurement (per-round rates by name).

    The best grid point is the grid candidate with the highest median rate in this measurement
    (not the validation's: that maximum over noisy runs is biased upwards).
    """
    best = max(grid, key=lambda n: statistics.median(rates[n]))
    c_best = paired_ratio(rates["chosen"], rates[best])
    c_paper = paired_ratio(rates["chosen"], rates["paper_default"])
    return {
        "best_grid": best,
        "chosen_over_best_grid": c_best,
        "chosen_over_paper_default": c_paper,
        "within_2pct_of_best_grid": c_best["median"] >= 0.98,
        "faster_than_paper_default": c_paper["median"] > 1.0,
    }


def paired_speedups(
    rates: dict[str, list[float]], predicted: dict[str, float]
) -> tuple[dict[str, dict[str, float]], dict[str, float | None]]:
    """Per policy, measured speedup over AR (median of per-round ratios) against the predicted one.

    ``predicted``: simulated tokens/s by name (``ar`` included). Returns the rows and the median
    and max of |predicted / measured - 1|.
    """
    rows = {}
    for name in rates:
        if name == "ar" or name not in predicted:
            continue
        meas = paired_ratio(rates[name], rates["ar"])
        pred = predicted[name] / predicted["ar"]
        rows[name] = {
            "measured": meas["median"],
            "measured_min": meas["min"],
            "measured_max": meas["max"],
            "predicted": pred,
            "error": pred / meas["median"] - 1.0,
        }
    errs = [abs(r["error"]) for r in rows.values()]
    summary = {
        "median_abs_error": statistics.median(errs) if errs else None,
        "max_abs_error": max(errs) if errs else None,
        "points": len(errs),
    }
    return rows, summary


def run_paired(
    cfg: LoopConfig, pols: dict[str, Policy], prompts: Path, rounds: int, name: str
) -> dict[str, Any]:
    """``studies/paired.py`` on ``pols`` (B=1, T=0) over ``prompts``; writes ``<name>_policies.json``
    and ``<name>.json`` under cfg.out and returns the latter's content. A ``<name>.json`` of the
    same policies, prompts and rounds is returned without measuring again (the stage resumes)."""
    pol_file = cfg.out / f"{name}_policies.json"
    wanted = {n: p.to_dict() for n, p in pols.items()}
    out = cfg.out / f"{name}.json"
    if out.is_file() and pol_file.is_file():
        done = json.loads(out.read_text())
        same = json.loads(pol_file.read_text()) == wanted and done.get("rounds") == rounds
        same = same and done.get("prompts") == str(prompts)
        if same and (done.get("num_prompts"), done.get("max_new_tokens")) == (
            cfg.num_prompts,
            cfg.max_new_tokens,
        ):
            return done
    pol_file.write_text(json.dumps(wanted, indent=1))
    argv = [sys.executable, str(ROOT / "studies" / "paired.py"), "--policies", str(pol_file)]
    argv += ["--pair", cfg.pair, "--prompts", str(prompts)]
    argv += ["--num-prompts", str(cfg.num_prompts), "--max-new-tokens", str(cfg.max_new_tokens)]
    argv += ["--rounds", str(rounds), "-o", str(out)]
    subprocess.run(argv, check=True, cwd=ROOT)
    return json.loads(out.read_text())


def stage_paired(cfg: LoopConfig) -> None:
    """The chosen policy, the paper default, AR and the best grid points, interleaved in one process.

    ``studies/paired.py`` decodes every validation prompt with each policy in turn, over
    ``paired_rounds`` rounds; the verdict compares per-round ratios, so the machine's drift
    (which separate runs suffer) cancels. Adds ``paired`` to closed_loop.json.
    """
    grid = sorted(grid_at_b1_t0(cfg).values(), key=median_rate, reverse=True)
    grid = grid[: cfg.paired_grid] if cfg.paired_grid > 0 else grid
    pols = {"chosen": chosen_policy(cfg), "paper_default": paper_default(), "ar": Policy(mode="ar")}
    top = Policy.load(cfg.out / "optimize_t0" / "policy.json")  # the simulator's own first
    if top != pols["chosen"]:
        pols["optimizer_top"] = top
    grid_names = []
    for recs in grid:
        name = "grid " + recs[0]["label"].removesuffix(" B=1 T=0")
        pols[name] = Policy.from_dict(recs[0]["policy"])
        grid_names.append(name)
    measured = run_paired(cfg, pols, cfg.valid_prompts, cfg.paired_rounds, "paired")
    rates = {n: r["rounds"] for n, r in measured["policies"].items()}
    verdict = paired_verdict(rates, grid_names)
    if "optimizer_top" in rates:  # what the simulator alone would have run
        verdict["optimizer_top_over_best_grid"] = paired_ratio(
            rates["optimizer_top"], rates[verdict["best_grid"]]
        )
    prof, wl = load_profile(cfg.profile), workload(cfg, 1, 0.0)
    predicted = {n: predict(prof, p, wl)["tokens_per_s"] for n, p in pols.items()}
    speedups, speedup_summary = paired_speedups(rates, predicted)
    summary_path = cfg.out / "closed_loop.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary["paired"] = {
        **measured,
        "verdict": verdict,
        "speedup_vs_ar": speedups,
        "speedup_error": speedup_summary,
    }
    summary_path.write_text(json.dumps(summary, indent=1))
    for n, r in measured["policies"].items():
        up = speedups.get(n)
        ups = f"x AR {up['measured']:.2f} (predicted {up['predicted']:.2f})" if up else ""
        print(f"{n:32s} {r['label']:56s} {r['tokens_per_s']:7.1f} tok/s  {ups}")
    print(
        f"speedup over AR, paired: median |error| {speedup_summary['median_abs_error']:.1%}, "
        f"max {speedup_summary['max_abs_error']:.1%} over {speedup_summary['points']} policies"
    )
    print(json.dumps(verdict, indent=1))
