"""Plots for ``studies/make_figures.py``: each function takes plain data and writes one small PNG.

matplotlib with the Agg backend; no simulation or I/O beyond the PNG. Data shapes:
- curves: ``{label: [(x, y), ...]}``; measured points the same, drawn as markers.
- coverage: ``{position label: (F values, empirical c(F), fitted c(F))}``.
- rows: the validation table rows (``ssdsim.validate.compare.row``).
- spans: ``ssdsim.timeline.Span`` tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DPI = 80
COLORS = {"AR": "k", "SD": "C2", "SSD": "C3", "SSD (paper default)": "C1"}


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_curves(
    predicted: dict[str, list[tuple[float, float]]],
    measured: dict[str, list[tuple[float, float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    path: Path,
    logx: bool = False,
) -> Path:
    """Predicted curves (lines) and measured points (markers, same colour per label)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for i, (label, pts) in enumerate(predicted.items()):
        color = COLORS.get(label, f"C{i + 4}")
        ax.plot(*zip(*pts, strict=True), "-", color=color, label=f"{label} predicted")
        if measured.get(label):
            ax.plot(
                *zip(*measured[label], strict=True),
                "o",
                color=color,
                ms=6,
                mfc="none",
                label=f"{label} measured",
            )
    if logx:
        ax.set_xscale("log", base=2)
    ax.axhline(1.0, color="grey", lw=0.6)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_coverage(
    tables: dict[str, tuple[Sequence[int], Sequence[float], Sequence[float]]],
    title: str,
    path: Path,
) -> Path:
    """Miss chance 1 - c(F) against fan-out F on log-log axes: measured markers, power-law lines."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for i, (label, (fans, emp, law)) in enumerate(tables.items()):
        ok = [(f, 1 - e) for f, e in zip(fans, emp, strict=True) if e < 1]
        if ok:
            ax.plot(*zip(*ok, strict=True), "o", color=f"C{i}", ms=4, label=f"{label} measured")
        ax.plot(
            fans,
            [max(1 - x, 1e-4) for x in law],
            "-",
            color=f"C{i}",
            lw=1,
            label=f"{label} power law",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="fan-out F (candidates prepared)", ylabel="miss chance 1 - c(F)", title=title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_predicted_vs_measured(
    rows: list[dict[str, Any]], summary: dict[str, Any], path: Path
) -> Path:
    """Predicted against measured tokens/s per sequence, one marker per grid point, y = x and
    +-8%; beside it, when the runs had speed probes, the same against each point measured at the
    calibration's speed (``adjusted_measured``)."""
    panels = [
        ("measured tokens/s per sequence", "tokens_per_s", "median_abs_error", "max_abs_error")
    ]
    if any(r.get("adjusted_measured") for r in rows):
        panels.append(
            (
                "measured, at the calibration's speed (probe)",
                "adjusted",
                "adjusted_median_abs_error",
                "adjusted_max_abs_error",
            )
        )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (label, key, med_key, max_key) in zip(axes[0], panels, strict=True):
        _predicted_panel(ax, rows, label, key, summary.get(med_key), summary.get(max_key))
    return _save(fig, path)


def _predicted_panel(ax, rows, label: str, key: str, med, mx) -> None:
    markers = {"ar": ("s", "k"), "sd": ("^", "C2"), "ssd": ("o", "C3")}

    def measured(r):
        return r.get("adjusted_measured") if key == "adjusted" else r["measured"][key]

    shown = [r for r in rows if measured(r)]
    for mode, (m, c) in markers.items():
        pts = [(measured(r), r["predicted"]["tokens_per_s"]) for r in shown if r["mode"] == mode]
        if pts:
            ax.plot(*zip(*pts, strict=True), m, color=c, mfc="none", ms=5, label=mode.upper())
    allv = [v for r in shown for v in (measured(r), r["predicted"]["tokens_per_s"])]
    lo, hi = min(allv) * 0.9, max(allv) * 1.1
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    for f in (0.92, 1.08):
        ax.plot([lo, hi], [lo * f, hi * f], "k:", lw=0.6)
    ax.set(
        xlabel=label,
        ylabel="predicted tokens/s per sequence",
        xlim=(lo, hi),
        ylim=(lo, hi),
    )
    if med is not None:
        ax.set_title(f"{len(shown)} points: median |error| {med:.1%}, max {mx:.1%}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def plot_paired_speedups(
    rows: dict[str, dict[str, float]], summary: dict[str, Any], path: Path
) -> Path:
    """Predicted against measured speedup over AR from a paired run (bars: the rounds' range)."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    special = {"chosen": "C0", "optimizer_top": "C4", "paper_default": "C1"}
    for name, r in rows.items():
        kind = "SD" if " sd " in f" {name} " else "AR" if name.endswith("ar") else "SSD"
        color = {"SD": "C2", "AR": "k", "SSD": "C3"}[kind]
        color = special.get(name, color)
        err = [[r["measured"] - r["measured_min"]], [r["measured_max"] - r["measured"]]]
        ax.errorbar(
            r["measured"], r["predicted"], xerr=err, fmt="o", color=color, mfc="none", ms=5, lw=0.8
        )
    legend = [("SD", "C2"), ("SSD", "C3"), ("loop's choice", "C0"), ("paper default", "C1")]
    if "optimizer_top" in rows:
        legend.insert(3, ("optimizer's top pick", "C4"))
    for label, c in legend:
        ax.plot([], [], "o", color=c, mfc="none", label=label)
    allv = [
        v for r in rows.values() for v in (r["measured_min"], r["measured_max"], r["predicted"])
    ]
    lo, hi = min(allv) * 0.95, max(allv) * 1.05
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    for f in (0.92, 1.08):
        ax.plot([lo, hi], [lo * f, hi * f], "k:", lw=0.6)
    ax.set(
        xlabel="measured speedup over AR (paired rounds)",
        ylabel="predicted speedup over AR",
        xlim=(lo, hi),
        ylim=(lo, hi),
    )
    med, mx = summary.get("median_abs_error"), summary.get("max_abs_error")
    if med is not None:
        ax.set_title(
            f"B=1, T=0, {len(rows)} policies: median |error| {med:.1%}, max {mx:.1%}", fontsize=9
        )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_fan_out_shapes(shapes: dict[str, Sequence[int]], title: str, path: Path) -> Path:
    """Fan-out per accepted length j (bars side by side, one group per j)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    n = len(shapes)
    width = 0.8 / max(n, 1)
    for i, (label, fan) in enumerate(shapes.items()):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(fan))]
        ax.bar(xs, fan, width=width, label=f"{label} (M={sum(fan)})", color=f"C{i}")
    k = max(len(f) for f in shapes.values()) - 1
    ax.set_xticks(range(k + 1), [str(j) if j < k else f"{j}\n(bonus)" for j in range(k + 1)])
    ax.set(xlabel="accepted length j", ylabel="fan-out F_j", title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_timeline(spans: Sequence[Any], title: str, path: Path) -> Path:
    """Target and draft lanes of a few steps: what overlapped with what."""
    colors = {
        "verify": "C0",
        "await draft": "0.8",
        "host": "C7",
        "prespec": "C3",
        "jit": "C1",
        "fast": "C4",
        "draft": "C2",
    }
    lanes = {"target": 1, "draft": 0}
    fig, ax = plt.subplots(figsize=(7.5, 2.4))
    t0 = min(s.start_s for s in spans)
    seen: set[str] = set()
    for s in spans:
        label = s.name if s.name not in seen else None
        seen.add(s.name)
        ax.broken_barh(
            [((s.start_s - t0) * 1e3, (s.end_s - s.start_s) * 1e3)],
            (lanes[s.lane] - 0.35, 0.7),
            color=colors.get(s.name, "C9"),
            label=label,
        )
    ax.set_yticks([0, 1], ["draft", "target"])
    ax.set(xlabel="ms from the first step shown", title=title)
    ax.legend(fontsize=7, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    return _save(fig, path)
