"""The calibration's residual report: what was fitted, from how much data, and how well.

Per (temperature, rescale): acceptance per position by proposer with sample counts; how
sequences differ (the per-sequence spreads of draft and fast proposals); the
coverage power laws and their largest gap to the empirical tables; per SSD trace the measured
hit rate against the fitted model's stationary hit rate; the forward formulas' relative errors
on their grids; the host work per step. Never torch or the executor.
"""

from __future__ import annotations

from ssdsim.analytic import stationary_hit_rate
from ssdsim.calibrate.core import Calibration
from ssdsim.chance import chance_at
from ssdsim.policy import Policy
from ssdsim.profile import FAST_CONTEXTS


def _rates(values: tuple[float, ...] | None) -> str:
    return "-" if not values else "[" + " ".join(f"{v:.3f}" for v in values) + "]"


def _spread(spread: tuple[float, ...], on: str = "rejection") -> str:
    """A spread's size and its 10th, 50th and 90th percentiles (multipliers on ``on``)."""
    q = sorted(spread)
    pick = [q[min(len(q) - 1, int(f * len(q)))] for f in (0.1, 0.5, 0.9)]
    return (
        f"{len(q)} sequences, {on} x{pick[0]:.2f} / x{pick[1]:.2f} / x{pick[2]:.2f} (p10/p50/p90)"
    )


def hit_rate_checks(cal: Calibration) -> list[tuple[str, float, float]]:
    """(trace, measured hit rate, predicted stationary hit rate) for every SSD trace."""
    out = []
    for path, trace in cal.traces.items():
        s = trace.summary
        if trace.header.policy.get("mode") != "ssd" or s is None or s.hit_rate is None:
            continue
        policy = Policy.from_dict(trace.header.policy)
        t = float(trace.header.workload["temperature"])
        at = chance_at(cal.profile.chance, t, policy.rescale)
        miss = policy.fallback_for(int(trace.header.workload.get("batch_size", 1)))
        out.append((path, s.hit_rate, stationary_hit_rate(at, policy, miss)[0]))
    return out


def format_report(cal: Calibration) -> str:
    lines = [f"calibrated profile {cal.profile.name!r} from {len(cal.traces)} trace(s)"]
    prov = cal.profile.provenance
    if prov.get("speed_probe_s"):
        probes = [t["speed_probe_s"] for t in prov.get("traces", []) if t.get("speed_probe_s")]

        def listed(groups: dict) -> str:
            return ", ".join(
                f"{k} {a:.2f}" + (f" + draft {b:.2f}" if b else "")
                for k, (a, b) in (groups or {}).items()
                if k != "*"
            )

        used, fitted = prov.get("speed_probe_weights"), prov.get("speed_probe_weights_fitted")
        source = prov.get("speed_probe_weights_from", "fitted")
        w = prov.get("speed_probe_weight")
        how = (
            "each trace's times brought to it, stretch by stretch"
            + (f" (by its probes' ratios to the powers {source}: {listed(used)}" if used else "")
            + (
                f" (by its probe's ratio to the power {w:.2f}, fitted"
                if w is not None and not used
                else ""
            )
            + (
                f"; fitted on these traces: {listed(fitted)}"
                if fitted and source != "fitted"
                else ""
            )
            + (")" if used or w is not None else "")
            if prov.get("settings", {}).get("normalize_speed")
            else "times fitted as measured"
        )
        lines.append(
            f"machine speed: median probe {prov['speed_probe_s'] * 1e3:.3f} ms a target forward "
            f"(traces {min(probes) * 1e3:.3f}-{max(probes) * 1e3:.3f}); {how}"
        )
    for f in cal.points:
        p = f.point
        lines.append(f"chance at T={p.temperature:g}, C={p.rescale:g} ({p.samples} sequence-steps)")
        lines.append(f"  acceptance per position: hit {_rates(p.alpha)}")
        lines.append(f"    jit {_rates(p.alpha_after_miss)}  fast {_rates(p.alpha_fast)}")
        if p.run_alpha_sd or p.run_alpha_hit:
            first = {"sd": p.run_alpha_sd, "hit": p.run_alpha_hit, "jit": p.run_alpha_jit}
            starts = " ".join(f"{k} {t[0]:.3f}" for k, t in first.items() if t)
            rest = next(t for t in first.values() if t)[1:]
            lines.append(
                f"  acceptance by run length: after a rejection {starts}; runs 1.. {_rates(rest)}"
            )
        for name, table in (("draft", p.run_alpha_rank), ("fast", p.alpha_fast_rank)):
            if table:
                lines.append(
                    f"  SSD {name} rows' first proposal by the bonus rank before (1, 2-3, 4-7, ..): "
                    f"{_rates(table)}"
                )
        for name, table in (
            ("on a sequence's first step", p.alpha_fast_first),
            ("after a fully accepted fast row", p.alpha_fast_full),
            ("after a fast row with a rejection", p.alpha_fast_part),
            ("after a draft row", p.alpha_fast_draft),
            ("after a row with no n-gram match", p.alpha_fast_nomatch),
        ):
            if table:
                lines.append(f"  fast rows {name}: acceptance per position {_rates(table)}")
        if p.fast_nomatch:
            lines.append(
                "  fast rows that accepted nothing and found no n-gram match, by the row before "
                + ", ".join(
                    f"{c} {v:.2f}" for c, v in zip(FAST_CONTEXTS, p.fast_nomatch, strict=True)
                )
            )
        rows = p.alpha_fast_draft_rank
        for b, row in enumerate(rows):
            lo, hi = 2**b, 2 ** (b + 1) - 1
            rank = f"{lo} on" if b == len(rows) - 1 else (f"{lo}" if lo == hi else f"{lo}-{hi}")
            lines.append(f"    after a draft row's bonus of rank {rank}: {_rates(row)}")
        for kind, spread in (("draft", p.seq_spread), ("fast", p.seq_spread_fast)):
            if spread:
                unused = (
                    " (unused: the run lengths carry it)"
                    if kind == "draft" and (p.run_alpha_hit or p.run_alpha_sd)
                    else ""
                )
                lines.append(f"  sequences differ ({kind} proposals): {_spread(spread)}{unused}")
        if p.coverage_spread:
            lines.append(
                "  sequences differ in coverage (on the odds): "
                f"{_spread(p.coverage_spread, 'a miss')}"
            )
        if p.run_spread:
            lines.append(
                f"  sequences differ under the run tables (on the odds): {_spread(p.run_spread)}"
            )
        if f.reject_law is not None:
            betas = " ".join(f"{b:.3f}" for b in f.reject_law.betas)
            lines.append(
                f"  coverage after a rejection: 1-c = beta_j F^-{f.reject_law.r:.3f}, beta [{betas}], "
                f"rows per position {list(f.reject_counts)}, max |c - law| {f.reject_law.max_residual:.3f}"
            )
        if f.bonus_law is not None:
            lines.append(
                f"  coverage of the bonus: 1-c = {f.bonus_law.betas[0]:.3f} F^-{f.bonus_law.r:.3f}, "
                f"{f.bonus_count} rows, max |c - law| {f.bonus_law.max_residual:.3f}"
            )
    for path, measured, predicted in hit_rate_checks(cal):
        lines.append(f"hit rate {measured:.3f} measured, {predicted:.3f} predicted: {path}")
    for role, fit in cal.forwards.items():
        lat = fit.latency
        lines.append(
            f"{role} forward formula: {lat.fixed_s * 1e3:.3f} ms + {lat.token_s * 1e6:.1f} us/token "
            f"+ {lat.attn_s * 1e9:.2f} ns/token/context + {lat.kv_s * 1e9:.2f} ns/context; "
            f"relative error on the grid median {fit.median_rel_err:.1%}, max {fit.max_rel_err:.1%}"
        )
    if cal.costs is not None:
        lines.append(
            f"forward time scale from the traces (load while they ran): target x{cal.costs.target_scale:.3f}, "
            f"draft x{cal.costs.draft_scale:.3f} (median; per cell: target "
            + ", ".join(f"B{b}/{n}tok {v:.3f}" for (b, n), v in cal.costs.target_scales.items())
            + "; draft "
            + ", ".join(f"B{b} {v:.3f}" for (b, _), v in cal.costs.draft_scales.items())
            + f"); SD drafting {cal.costs.sd_draft_fixed_s * 1e3:.3f} ms a step beyond its k forwards"
        )
        row, step = cal.costs.sample_row_s, cal.costs.sample_step_s
        lines.append(
            "AR and SD sampling at T > 0 (verification's host work beyond greedy): "
            + (
                f"{(step or 0.0) * 1e6:.1f} us per step + {row * 1e6:.1f} us per scored row"
                if row is not None
                else "- (no T > 0 trace)"
            )
        )
    if cal.ssd is not None:

        def _x(v: float | None) -> str:
            return f"x{v:.3f}" if v is not None else "- (no traces to fit it)"

        trees = ", ".join(f"B={b} M={m} x{v:.3f}" for (b, m), v in cal.ssd.tree_scales.items())
        glue = ", ".join(f"B={b} {v * 1e3:.3f} ms" for b, v in cal.ssd.prespec_glue_s.items())
        lines.append(
            f"SSD draft tree time scales {trees or '- (no traces to fit them)'}; glue beyond its "
            f"forward {glue or '- (no traces to fit it)'}; jit decoding "
            f"{_x(cal.ssd.jit_scale)} the draft chain"
            + (f" + {cal.ssd.jit_fixed_s * 1e3:.3f} ms" if cal.ssd.jit_fixed_s else "")
            + (f" + {cal.ssd.jit_row_s * 1e3:.3f} ms a missed row" if cal.ssd.jit_row_s else "")
            + (
                ", its answer's wait beyond the message "
                + ", ".join(f"B={b} {v * 1e3:.3f} ms" for b, v in cal.ssd.jit_answer_s.items())
                if cal.ssd.jit_answer_s
                else ""
            )
            + "; at T > 0: draft chains "
            f"{_x(cal.ssd.sampling_scale)}, jit {_x(cal.ssd.jit_sampling_scale)}, tree sampling "
            + (
                f"{cal.ssd.tree_sample_row_s * 1e6:.1f} us per branch row and step"
                if cal.ssd.tree_sample_row_s is not None
                else "- (no T > 0 SSD trace)"
            )
            + "; target host work per draft distribution "
            + (
                f"{cal.ssd.dist_row_s * 1e6:.1f} us (k per row the draft proposed for)"
                if cal.ssd.dist_row_s is not None
                else "- (needs SSD traces at T = 0 and T > 0)"
            )
        )
    for name, o in cal.overheads.items():
        med = ", ".join(f"B={b}: {v * 1e3:.3f}" for b, v in o.medians.items())
        lines.append(
            f"host work per {name} step: {o.fixed_s * 1e3:.3f} ms + {o.per_seq_s * 1e3:.3f} ms/seq "
            f"({o.samples} steps; medians ms {med})"
        )
    return "\n".join(lines)
