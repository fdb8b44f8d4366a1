"""Fit the cost model: forward formulas from measured grids, host work per step from decode steps.

- ``fit_forward``: the CPU form of ``ssdsim.latency``'s formula, ``fixed_s + token_s*B*n +
  attn_s*B*n*c + kv_s*B*c``, by non-negative least squares on relative error
  (``scipy.optimize.nnls``); the grid is kept, so inside its range the measurements rule and the
  formula extrapolates beyond it.
- ``fit_overhead``: seconds per step = fixed + per_seq * B, by least squares over the per-batch-
  size medians of residual samples (a step's seconds minus the forwards it ran).
- ``host_residuals``: those samples from measured AR/SD steps (``LatencyMeasurements.host_steps``
  or executor traces): step seconds - drafting - the target forward of the step's shape.

Never torch or the executor.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from scipy.stats import trim_mean

from ssdsim import latency as lat
from ssdsim.profile import ForwardLatency, LatencyGrid


@dataclass(frozen=True)
class FormulaFit:
    """Fitted ForwardLatency (grid kept) and the formula's relative errors on the grid."""

    latency: ForwardLatency
    median_rel_err: float
    max_rel_err: float


def grid_points(grid: LatencyGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flattened (batch, tokens, context, seconds) arrays of every grid point."""
    b, n, c = np.meshgrid(grid.batch, grid.tokens, grid.context, indexing="ij")
    sec = np.asarray(grid.seconds, dtype=float)
    return b.ravel().astype(float), n.ravel().astype(float), c.ravel().astype(float), sec.ravel()


def fit_forward(grid: LatencyGrid) -> FormulaFit:
    """NNLS fit of the CPU formula to a grid, weighting every point by 1 / its seconds."""
    b, n, c, sec = grid_points(grid)
    design = np.stack([np.ones_like(b), b * n, b * n * c, b * c], axis=1) / sec[:, None]
    coef, _ = nnls(design, np.ones_like(sec))
    fixed, token, attn, kv = (float(x) for x in coef)
    formula = ForwardLatency(fixed_s=fixed, token_s=token, attn_s=attn, kv_s=kv)
    rel = np.abs(lat.formula_s(formula, b, n, c) / sec - 1.0)
    return FormulaFit(
        dataclasses.replace(formula, grid=grid), float(np.median(rel)), float(np.max(rel))
    )


@dataclass(frozen=True)
class OverheadFit:
    """Seconds per step = fixed_s + per_seq_s * B; per-batch means (``medians``: the name kept
    for the report) and the samples behind them."""

    fixed_s: float
    per_seq_s: float
    medians: dict[int, float]
    samples: int

    @property
    def table(self) -> dict[int, float]:
        """The per-batch means, floored at zero: the profile's ``host_by_batch`` for this mode."""
        return {b: max(v, 0.0) for b, v in self.medians.items()}

    def at(self, batch: int) -> float:
        """``table`` at ``batch`` as the simulator reads it (``ssdsim.latency.by_batch``); the
        line without per-batch means."""
        if self.medians:
            return float(lat.by_batch(self.table, batch, 0.0))
        return self.fixed_s + self.per_seq_s * batch


def fit_overhead(samples: Iterable[tuple[int, float]]) -> OverheadFit | None:
    """Least squares line through the per-batch-size (trimmed) means of (batch, seconds) samples (>= 0)."""
    by_batch: dict[int, list[float]] = defaultdict(list)
    for b, s in samples:
        by_batch[int(b)].append(float(s))
    if not by_batch:
        return None
    # means, not medians: throughput pays for every step (the 2% tails each side are dropped)
    medians = {b: float(trim_mean(v, 0.02)) for b, v in sorted(by_batch.items())}
    x = np.array(list(medians), dtype=float)
    y = np.array(list(medians.values()))
    if len(x) == 1:
        return OverheadFit(max(float(y[0]), 0.0), 0.0, medians, sum(map(len, by_batch.values())))
    coef, _ = nnls(np.stack([np.ones_like(x), x], axis=1), y)
    return OverheadFit(float(coef[0]), float(coef[1]), medians, sum(map(len, by_batch.values())))


def host_residuals(
    target: ForwardLatency, steps: Iterable[dict], mode: str
) -> list[tuple[int, float]]:
    """(batch, seconds of host work) per step of ``mode`` (ar or sd): step - draft - target forward.

    Each step dict has ``batch``, ``k``, ``context`` (mean tokens before the step), ``step_s``
    and ``draft_s`` (``ssdsim.profile.HOST_STEP_FIELDS``).
    """
    out = []
    for s in steps:
        if s["mode"] != mode:
            continue
        n = s["k"] + 1
        fwd = lat.forward_s(target, s["batch"], n, s["context"] + n)
        out.append((s["batch"], s["step_s"] - s["draft_s"] - fwd))
    return out
