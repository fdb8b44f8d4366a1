"""A sweep: one study per (batch size, temperature), a table, and speedup curves.

For each point it records the re-evaluated best policy, the best SSD, the best SD, AR and the
paper default. Per temperature it derives the auto fallback's threshold: the smallest batch size
from which the best policy with the fast fallback beats the best with jit (each the best of its
study's trials with that fallback, same simulation seed), i.e. where ``auto`` should switch.

Writes ``<out>/sweep.json``, ``<out>/sweep.png`` and each point's ``summary.json`` and
``policy.json`` under ``<out>/B<b>_T<t>/``. Never imports torch, executor or kernels.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ssdsim.optimize import report
from ssdsim.optimize.search import optimize
from ssdsim.optimize.select import Result
from ssdsim.optimize.settings import Settings
from ssdsim.policy import Policy
from ssdsim.profile import Profile
from ssdsim.workload import Workload


def best_by_fallback(result: Result, batch_size: int) -> dict[str, float]:
    """Best search value of feasible SSD trials for each concrete fallback (jit, fast) at this B."""
    out: dict[str, float] = {}
    for h in result.history:
        if h["feasible"] and h["policy"]["mode"] == "ssd":
            fb = Policy.from_dict(h["policy"]).fallback_for(batch_size)
            out[fb] = max(out.get(fb, 0.0), h["value"])
    return out


def auto_threshold(points: Sequence[tuple[int, dict[str, float]]]) -> int | None:
    """Smallest batch size from which fast beats jit at every larger swept size (None: never).

    ``points``: (batch size, best value per fallback) of one temperature.
    """
    threshold = None
    for b, best in sorted(points, reverse=True):
        if best.get("fast", 0.0) > best.get("jit", 0.0):
            threshold = b
        else:
            break
    return threshold


def point_row(
    b: int, t: float, summary: dict[str, Any], fallbacks: dict[str, float]
) -> dict[str, Any]:
    base = summary["baselines"]
    found = summary.get("best_ssd", summary["best"])
    ssd = found if found["policy"]["mode"] == "ssd" else None

    def tps(entry: dict[str, Any] | None) -> float | None:
        return entry["tokens_per_s"] if entry else None

    return {
        "batch_size": b,
        "temperature": t,
        "best": summary["best"]["label"],
        "best_policy": summary["best"]["policy"],
        "best_tokens_per_s": summary["best"]["tokens_per_s"],
        "best_ssd": ssd["label"] if ssd else None,
        "best_ssd_tokens_per_s": tps(ssd),
        "best_ssd_hit_rate": ssd["hit_rate"] if ssd else None,
        "best_ssd_policy": ssd["policy"] if ssd else None,
        "sd": base["sd"]["label"] if "sd" in base else None,
        "sd_tokens_per_s": tps(base.get("sd")),
        "ar_tokens_per_s": tps(base.get("ar")),
        "paper_default_tokens_per_s": tps(base.get("paper_default")),
        "best_by_fallback": fallbacks,
        "study": summary["study"],
    }


def sweep(
    profile: Profile,
    workload: Workload,
    batch_sizes: Sequence[int],
    temperatures: Sequence[float],
    settings: Settings,
    out_dir: Path | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run every point's study (resuming those already run); returns the sweep table as a dict."""
    rows = []
    points = [(t, b) for t in temperatures for b in batch_sizes]
    for t, b in tqdm(points, desc="sweep", unit="study", disable=not show_progress):
        work = dataclasses.replace(workload, batch_size=b, temperature=t)
        result = optimize(profile, work, settings)
        summary = report.summary_dict(result, profile, work, settings)
        if out_dir is not None:
            report.write_outputs(result, summary, out_dir / f"B{b}_T{t:g}")
        rows.append(point_row(b, t, summary, best_by_fallback(result, b)))
    thresholds = {
        f"{t:g}": auto_threshold(
            [(r["batch_size"], r["best_by_fallback"]) for r in rows if r["temperature"] == t]
        )
        for t in temperatures
    }
    out = {
        "profile": profile.name,
        "workload": workload.to_dict(),
        "points": rows,
        "auto_threshold": thresholds,
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "sweep.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


def _f(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def format_sweep(table: dict[str, Any]) -> str:
    """One line per point: tokens/s of best / best SSD / SD / AR / paper default, and speedups."""
    head = f"{'T':>4} {'B':>4}  {'best':>8} {'SSD':>8} {'SD':>8} {'AR':>8} {'paper':>8}  {'SSD/SD':>6} {'SSD/AR':>6} {'hit':>5}  best policy"
    lines = [head, "-" * len(head)]
    for r in table["points"]:
        ssd, sd, ar = r["best_ssd_tokens_per_s"], r["sd_tokens_per_s"], r["ar_tokens_per_s"]
        lines.append(
            f"{r['temperature']:>4g} {r['batch_size']:>4}  {r['best_tokens_per_s']:>8.1f} {_f(ssd, '8.1f')} {_f(sd, '8.1f')} "
            f"{_f(ar, '8.1f')} {_f(r['paper_default_tokens_per_s'], '8.1f')}  "
            f"{_f(ssd / sd if ssd and sd else None, '6.2f')} {_f(ssd / ar if ssd and ar else None, '6.2f')} "
            f"{_f(r['best_ssd_hit_rate'], '5.2f')}  {r['best']}"
        )
    thr = ", ".join(
        f"T={t}: {'B>=' + str(v) if v else 'never'}" for t, v in table["auto_threshold"].items()
    )
    lines.append(f"auto fallback switches to fast at {thr}")
    return "\n".join(lines)


def run_sweep(job: Any, settings: Settings, plots: bool = True) -> dict[str, Any]:
    """CLI entry: run the sweep of ``job`` (see cli.Job), print the table, write the figure."""
    table = sweep(
        job.profile,
        job.workload,
        job.batch_sizes,
        job.temperatures,
        settings,
        job.out,
        settings.progress,
    )
    print(format_sweep(table))
    if plots:
        from ssdsim.optimize.plots import plot_sweep

        plot_sweep(table, job.out / "sweep.png")
    print(f"\nwrote {job.out / 'sweep.json'}" + (f" and {job.out / 'sweep.png'}" if plots else ""))
    return table
