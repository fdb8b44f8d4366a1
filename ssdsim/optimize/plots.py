"""Figures of one study: optimisation history, best fan-out beside the analytic optimum, speedups.

matplotlib with the Agg backend (no display needed). Never imports torch, executor or kernels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ssdsim.optimize.objective import Evaluation
from ssdsim.optimize.select import Result
from ssdsim.optimize.theory import list_hit_rate, optimal_lists
from ssdsim.profile import Profile

DPI = 90


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_history(result: Result, path: Path) -> Path:
    """Search value of every trial, the running best SSD, and the baselines' search values."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ssd = [h for h in result.history if h["policy"]["mode"] == "ssd" and h["feasible"]]
    bad = [h for h in result.history if not h["feasible"]]
    ax.scatter(
        [h["number"] for h in ssd], [h["value"] for h in ssd], s=8, alpha=0.5, label="SSD trials"
    )
    if bad:
        ax.scatter(
            [h["number"] for h in bad],
            [0.0] * len(bad),
            s=8,
            marker="x",
            color="grey",
            label="over cache memory",
        )
    best, run = [], 0.0
    for h in sorted(ssd, key=lambda h: h["number"]):
        run = max(run, h["value"])
        best.append((h["number"], run))
    if best:
        ax.step(*zip(*best, strict=True), where="post", color="C3", label="best SSD so far")
    by_label = {h["label"]: h["value"] for h in result.history}
    lines = [("ar", "AR", "k"), ("sd", "best SD", "C2"), ("paper_default", "paper default", "C1")]
    for key, name, color in lines:
        ev = result.baselines.get(key)
        if ev is not None and ev.label in by_label:
            ax.axhline(by_label[ev.label], color=color, ls="--", lw=1, label=name)
    ax.set_xlabel("trial")
    ax.set_ylabel("tokens/s per sequence (search seed)")
    ax.set_title(f"optimisation history: {result.study_name}", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_fan_out(
    best: Evaluation, profile: Profile, temperature: float, batch_size: int, path: Path
) -> Path:
    """The best policy's fan-out lists beside the hit-rate-optimal allocation at the same k and M."""
    p = best.policy
    hit_opt, miss_opt = optimal_lists(
        profile, temperature, p.rescale, p.k, p.budget, p.fallback_for(batch_size)
    )
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.2), sharey=True)
    xs = list(range(p.k + 1))
    panels = (
        ("after hit", p.fan_out, hit_opt, "hit"),
        ("after miss", p.fan_out_miss, miss_opt, p.fallback_for(batch_size)),
    )
    for ax, (title, found, opt, proposer) in zip(axes, panels, strict=True):
        h_found = list_hit_rate(profile, temperature, p.rescale, p.k, found, proposer)
        h_opt = list_hit_rate(profile, temperature, p.rescale, p.k, opt, proposer)
        ax.bar([x - 0.2 for x in xs], found, width=0.4, label=f"found (hit {h_found:.3f})")
        ax.bar([x + 0.2 for x in xs], opt, width=0.4, label=f"analytic optimum (hit {h_opt:.3f})")
        ax.set_title(f"fan-out {title}, k={p.k}, M={p.budget}", fontsize=9)
        ax.set_xlabel("accepted length j")
        ax.set_xticks(xs)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("fan-out F_j")
    return _save(fig, path)


def plot_speedups(summary: dict[str, Any], path: Path) -> Path:
    """Re-evaluated tokens/s of the best policy and the baselines (horizontal bars), with speedups."""
    from ssdsim.optimize.report import table_rows

    rows = table_rows(summary)[::-1]  # best on top
    fig, ax = plt.subplots(figsize=(8.0, 0.8 + 0.6 * len(rows)))
    values = [r["tokens_per_s"] for _, r in rows]
    errs = [r["tokens_per_s_std"] for _, r in rows]
    ax.barh(
        range(len(rows)),
        values,
        xerr=errs,
        color=[f"C{len(rows) - 1 - i}" for i in range(len(rows))],
    )
    for i, (_, r) in enumerate(rows):
        speed = (
            f"{r['speedup_vs_ar']:.2f}x AR, {r['speedup_vs_sd']:.2f}x SD"
            if r.get("speedup_vs_sd")
            else ""
        )
        ax.text(r["tokens_per_s"], i, f" {r['tokens_per_s']:.1f}  {speed}", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{title}\n{r['label']}" for title, r in rows], fontsize=6)
    ax.set_xlim(0, max(values) * 1.45)
    ax.set_xlabel("tokens/s per sequence (re-evaluated)")
    work = summary["workload"]
    ax.set_title(
        f"{summary['profile']}  B={work['batch_size']}  T={work['temperature']:g}", fontsize=9
    )
    return _save(fig, path)


def write_figures(
    result: Result, summary: dict[str, Any], profile: Profile, out_dir: Path
) -> list[Path]:
    """All three figures of one study in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    work = summary["workload"]
    paths = [
        plot_history(result, out_dir / "history.png"),
        plot_speedups(summary, out_dir / "speedups.png"),
    ]
    if result.best_ssd is not None:
        paths.append(
            plot_fan_out(
                result.best_ssd,
                profile,
                work["temperature"],
                work["batch_size"],
                out_dir / "fan_out.png",
            )
        )
    return paths


def plot_sweep(table: dict[str, Any], path: Path) -> Path:
    """Speedup over AR of the best SSD, the best SD and the paper default against batch size, per T."""
    temps = sorted({r["temperature"] for r in table["points"]})
    fig, axes = plt.subplots(
        1, len(temps), figsize=(3.6 * len(temps) + 0.6, 3.4), sharey=True, squeeze=False
    )
    series = (
        ("best_ssd_tokens_per_s", "best SSD", "C3"),
        ("sd_tokens_per_s", "best SD", "C2"),
        ("paper_default_tokens_per_s", "paper default SSD", "C1"),
    )
    for ax, t in zip(axes[0], temps, strict=True):
        rows = sorted(
            (r for r in table["points"] if r["temperature"] == t), key=lambda r: r["batch_size"]
        )
        bs = [r["batch_size"] for r in rows]
        for key, name, color in series:
            ys = [
                r[key] / r["ar_tokens_per_s"] if r[key] and r["ar_tokens_per_s"] else float("nan")
                for r in rows
            ]
            ax.plot(bs, ys, marker="o", ms=3, color=color, label=name)
        ax.axhline(1.0, color="k", lw=1, ls="--", label="AR")
        stop = next(
            (
                r["batch_size"]
                for r in rows
                if not r["best_ssd_tokens_per_s"]
                or r["best_ssd_tokens_per_s"] <= (r["sd_tokens_per_s"] or 0)
            ),
            None,
        )
        if stop is not None:
            ax.axvline(stop, color="grey", lw=1, ls=":", label=f"SSD <= SD from B={stop}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size B")
        ax.set_title(f"T = {t:g}", fontsize=9)
    axes[0][0].set_ylabel("speedup over AR (tokens/s per sequence)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(table["profile"], fontsize=9)
    return _save(fig, path)


def plot_sweep_policies(table: dict[str, Any], path: Path) -> Path:
    """How the best SSD policy changes with batch size: k, budget M and rescale C (T > 0 only),
    per temperature (filled markers: jit fallback, hollow: fast)."""
    temps = sorted({r["temperature"] for r in table["points"]})
    fig, axes = plt.subplots(1, 3, figsize=(10.0, 3.2))
    knobs = (
        ("k", lambda p: p["k"]),
        ("M", lambda p: sum(p["fan_out"])),
        ("C", lambda p: p["rescale"]),
    )
    for i, t in enumerate(temps):
        rows = sorted(
            (r for r in table["points"] if r["temperature"] == t and r["best_ssd"]),
            key=lambda r: r["batch_size"],
        )
        for ax, (name, knob) in zip(axes, knobs, strict=True):
            if name == "C" and t == 0:
                continue  # the rescale does nothing at T = 0 and is not searched there
            points = [
                (r["batch_size"], knob(r["best_ssd_policy"]), r["best_ssd_policy"]["fallback"])
                for r in rows
            ]
            ax.plot(
                [b for b, _, _ in points],
                [v for _, v, _ in points],
                color=f"C{i}",
                lw=1,
                label=f"T={t:g}",
            )
            for b, v, fallback in points:
                ax.plot(
                    b, v, "o", ms=5, color=f"C{i}", mfc=f"C{i}" if fallback == "jit" else "none"
                )
    axes[2].set_ylim(0, 1.05)
    for ax, title in zip(axes, ("lookahead k", "cache budget M", "rescale C (T > 0)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size B")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"{table['profile']}: best SSD policy (filled: jit fallback, hollow: fast)", fontsize=9
    )
    return _save(fig, path)
