"""Stage shortlist of studies/closed_loop.py: the simulator proposes, paired real runs choose.

The optimizer re-evaluates its best policies (``optimize_t0/summary.json``, ``candidates``:
the top SSD and SD policies of its search and the baselines, fastest predicted first). The
``cfg.shortlist`` fastest of them, one of each kind first (``shortlist_candidates``), decode
the *calibration* prompts paired beside AR
(``studies/paired.py``: every policy decodes each prompt in turn, ``cfg.shortlist_rounds``
rounds) and the one with the best median rate over rounds becomes the loop's choice
(``shortlist.json``), which stages run and paired then measure on the validation prompts. The
validation prompts take no part in the choice. Imports loop_stages (never the other way).
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from loop_paired import paired_ratio, run_paired
from loop_stages import LoopConfig

from ssdsim.optimize.select import diverse
from ssdsim.policy import Policy


def _family(row: dict[str, Any]) -> tuple[str, str]:
    """The kind of policy: SD, or SSD with its miss fallback."""
    pol = row["policy"]
    return pol["mode"], pol.get("fallback", "jit") if pol["mode"] == "ssd" else ""


def _k_family(row: dict[str, Any]) -> tuple[tuple[str, str], int]:
    return _family(row), int(row["policy"].get("k", 0))


def shortlist_candidates(summary: dict[str, Any], n: int) -> dict[str, Policy]:
    """``n`` candidates of an optimizer summary by label, fastest predicted first but diverse:
    the best SD, the best SSD of each fallback, then of each further k, then the next best
    (``ssdsim.optimize.select.diverse``; near-copies of one policy say nothing new). AR is
    left out: a speculative policy predicted slower than AR has nothing to confirm."""
    rows = summary.get("candidates")
    if not isinstance(rows, list) or not rows:
        raise SystemExit(
            "shortlist: the optimizer summary has no 'candidates' (rerun stage optimize)"
        )
    ranked = sorted(
        (r for r in rows if r["policy"]["mode"] != "ar"), key=lambda r: -r["tokens_per_s"]
    )
    return {
        r["label"]: Policy.from_dict(r["policy"]) for r in diverse(ranked, n, _family, _k_family)
    }


def pick(rates: dict[str, list[float]]) -> str:
    """The name with the best median rate over rounds (ties: the first given, i.e. predicted faster)."""
    if not rates:
        raise ValueError("pick: no measured candidate")
    return max(rates, key=lambda name: statistics.median(rates[name]))


def stage_shortlist(cfg: LoopConfig) -> None:
    summary = json.loads((cfg.out / "optimize_t0" / "summary.json").read_text())
    cands = shortlist_candidates(summary, cfg.shortlist)
    predicted = {r["label"]: r["tokens_per_s"] for r in summary["candidates"]}
    predicted["ar"] = summary["baselines"]["ar"]["tokens_per_s"]
    yardstick = {"ar": Policy(mode="ar")}  # measured beside them, never a candidate
    measured = run_paired(
        cfg, cands | yardstick, cfg.calib_prompts, cfg.shortlist_rounds, "shortlist"
    )
    rates = {n: r["rounds"] for n, r in measured["policies"].items()}
    ar = rates.pop("ar")
    choice = pick(rates)
    out = {
        "prompts": str(cfg.calib_prompts),
        "rounds": cfg.shortlist_rounds,
        "candidates": [
            {
                "label": name,
                "policy": cands[name].to_dict(),
                "predicted_tokens_per_s": predicted[name],
                "measured_tokens_per_s": statistics.median(rates[name]),
                "rounds": rates[name],
                "predicted_speedup_vs_ar": predicted[name] / predicted["ar"],
                "measured_speedup_vs_ar": paired_ratio(rates[name], ar)["median"],
            }
            for name in cands
        ],
        "ar_rounds": ar,
        "choice": {"label": choice, "policy": cands[choice].to_dict()},
        "optimizer_top": next(iter(cands)),
    }
    (cfg.out / "shortlist.json").write_text(json.dumps(out, indent=1))
    for row in out["candidates"]:
        mark = "  <- choice" if row["label"] == choice else ""
        print(
            f"{row['label']:60s} predicted {row['predicted_tokens_per_s']:7.1f} "
            f"({row['predicted_speedup_vs_ar']:.2f}x AR)  measured "
            f"{row['measured_tokens_per_s']:7.1f} ({row['measured_speedup_vs_ar']:.2f}x AR){mark}"
        )
