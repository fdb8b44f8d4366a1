"""Simulated curves and measured points for studies/make_figures.py.

Predicted: AR, the best SD and the best SSD of the validation grid's families (k in 2, 4, 6, 8;
uniform fan-out 3 or geometric, same budget; jit or fast), simulated with the profile on the
validation's workload; "with Saguaro sampling" also searches the rescale C in {0.25, 0.5, 0.75}.
Measured: the best SD and SSD of the validation table at each batch size or temperature, over
AR measured at the same point. Speedups are tokens/s per sequence over AR's.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from ssdsim.analytic import optimal_fan_out, proportional_fan_out
from ssdsim.chance import chance_at
from ssdsim.policy import Policy, paper_default
from ssdsim.profile import Profile
from ssdsim.simulator import simulate
from ssdsim.validate.grid import grid
from ssdsim.workload import Workload

KS = (2, 4, 6, 8)
RESCALES = (0.25, 0.5, 0.75)


def workload_of(validation: dict[str, Any]) -> Workload:
    """The validation's workload (prompt set, output length, number of prompts)."""
    return Workload.from_dict(validation["workload"])


def tokens_per_s(profile: Profile, policy: Policy, wl: Workload, seeds: int = 2) -> float:
    return statistics.fmean(
        simulate(profile, policy, wl, seed=wl.seed + i).tokens_per_s for i in range(seeds)
    )


def _best(profile: Profile, policies: Iterable[Policy], wl: Workload) -> float:
    return max(tokens_per_s(profile, p, wl) for p in policies)


def _families(profile: Profile, b: int, t: float) -> tuple[list[Policy], list[Policy]]:
    pts = grid(profile, KS, (b,), (t,))
    return [p.policy for p in pts if p.policy.mode == "sd"], [
        p.policy for p in pts if p.policy.mode == "ssd"
    ]


def speedup_vs_batch(profile: Profile, wl: Workload, batch_sizes: Sequence[int]) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for b in batch_sizes:
        w = dataclasses.replace(wl, batch_size=b, num_prompts=max(b, wl.total_prompts))
        ar = tokens_per_s(profile, Policy(mode="ar"), w)
        sd, ssd = _families(profile, b, w.temperature)
        out["AR"].append((b, 1.0))
        out["SD"].append((b, _best(profile, sd, w) / ar))
        out["SSD"].append((b, _best(profile, ssd, w) / ar))
        out["SSD (paper default)"].append((b, tokens_per_s(profile, paper_default(), w) / ar))
    return dict(out)


def speedup_vs_temperature(
    profile: Profile, wl: Workload, temperatures: Sequence[float]
) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    w1 = dataclasses.replace(wl, batch_size=1)
    for t in temperatures:
        w = dataclasses.replace(w1, temperature=t)
        ar = tokens_per_s(profile, Policy(mode="ar"), w)
        sd, ssd = _families(profile, 1, t)
        best_plain = _best(profile, ssd, w)
        rescaled = (
            [dataclasses.replace(p, rescale=c) for p in ssd for c in RESCALES] if t > 0 else []
        )
        out["AR"].append((t, 1.0))
        out["SD"].append((t, _best(profile, sd, w) / ar))
        out["SSD"].append((t, best_plain / ar))
        out["SSD + Saguaro sampling"].append(
            (t, max(best_plain, _best(profile, rescaled, w) if rescaled else 0.0) / ar)
        )
    return dict(out)


def measured_speedups(rows: list[dict[str, Any]], axis: str, **where: Any) -> dict[str, list]:
    """Best measured SD and SSD over AR at each value of ``axis`` among rows matching ``where``."""
    by: dict[float, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if any(r[key] != value for key, value in where.items()):
            continue
        name = r["mode"].upper()
        tps = r["measured"]["tokens_per_s"]
        by[r[axis]][name] = max(by[r[axis]].get(name, 0.0), tps)
    out: dict[str, list] = defaultdict(list)
    for x, best in sorted(by.items()):
        if "AR" not in best:
            continue
        for name in ("SD", "SSD"):
            if name in best:
                out[name].append((x, best[name] / best["AR"]))
        out["AR"].append((x, 1.0))
    return dict(out)


def fan_out_shapes(profile: Profile, k: int, chosen: Policy | None) -> dict[str, tuple[int, ...]]:
    """Uniform (3 per position), geometric (the paper's rule) and optimized fan-outs at one budget."""
    budget = 3 * (k + 1)
    at = chance_at(profile.chance, 0.0)
    shapes = {"uniform": (3,) * (k + 1), "geometric": proportional_fan_out(at, k, budget)}
    if chosen is not None and chosen.mode == "ssd" and chosen.k == k:
        shapes["optimized"] = chosen.fan_out
    else:
        shapes["optimal (exact hit rate)"] = optimal_fan_out(at, k, budget)
    return shapes
