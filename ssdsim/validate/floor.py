"""The noise floor of a validation: the errors a simulator that is exactly right would get.

Each point is measured in a few passes and judged by their median, which the machine's moods
move too. ``noise_floor`` reads how far each point's passes stray from each other (its
``pass_errors``: each pass against the mean of the others), takes that as a normal spread
around the point's true throughput, and draws the median of the same number of passes many
times: the median and max absolute errors a perfect prediction would score, and the same for
more passes. An error near its floor is the machine's; one above it is the simulator's.

Assumptions: normal, independent passes; a spread per point read off a handful of passes and
pooled with the other points' (``pass_sigmas``). Pure numpy; never torch or the executor.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

# |x_i - mean(others)| of n normal passes has sd sigma * sqrt(1 + 1/(n-1)); median |N(0, 1)|
MEDIAN_ABS_NORMAL = 0.6745


def pass_sigmas(
    rows: list[dict[str, Any]], who: str = "other_passes_adjusted"
) -> list[tuple[float, int]]:
    """(relative sd of one pass, passes) per point with three passes or more.

    Each point's own estimate (from its passes' errors against the others' mean) is pooled
    half and half, in variance, with the median over points: read off five passes, a point's
    spread alone comes out several times too wide now and then, and the widest would set the
    floor's max (loop 16 at the probed speed: 19.4% unpooled, above the simulator's 15.6%)."""
    own = []
    for r in rows:
        errs = [abs(e) for e in (r.get("pass_errors") or {}).get(who) or [] if e is not None]
        n = len(errs)
        if n >= 3:
            own.append((statistics.median(errs) / MEDIAN_ABS_NORMAL / (1 + 1 / (n - 1)) ** 0.5, n))
    if not own:
        return []
    pooled = statistics.median(s for s, _ in own) ** 2
    return [(((s * s + pooled) / 2) ** 0.5, n) for s, n in own]


def noise_floor(
    rows: list[dict[str, Any]],
    who: str = "other_passes_adjusted",
    passes: int | None = None,
    draws: int = 2000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """A perfect simulator's median and max absolute error over the points (means over
    ``draws``; the max also as its 10th and 90th percentiles), and how many points it would
    have within 3% and 8%, judged against the median of ``passes`` passes (default: as many as
    each point had). None when no point has three passes."""
    sig = pass_sigmas(rows, who)
    if not sig:
        return None
    sigma = np.array([s for s, _ in sig])
    rng = np.random.default_rng(seed)
    counts = sorted({passes or n for _, n in sig})
    per_point = np.array([passes or n for _, n in sig])
    err = np.empty((draws, len(sig)))
    for n in counts:
        at = per_point == n
        noise = rng.standard_normal((draws, int(at.sum()), n)) * sigma[at][None, :, None]
        err[:, at] = np.abs(np.median(noise, axis=2))
    top = err.max(axis=1)
    return {
        "passes": passes or int(np.median(per_point)),
        "median_abs_error": float(np.median(err, axis=1).mean()),
        "max_abs_error": float(top.mean()),
        "max_abs_error_p10_p90": [float(np.percentile(top, 10)), float(np.percentile(top, 90))],
        "within_3pct": float((err <= 0.03).sum(axis=1).mean()),
        "within_8pct": float((err <= 0.08).sum(axis=1).mean()),
        "points": len(sig),
        "pass_sigma_median": float(np.median(sigma)),
    }
