"""Stage shortlist of studies/closed_loop.py: the simulator proposes, paired real runs choose.

The optimizer re-evaluates its best policies (``optimize_t0/summary.json``, ``candidates``:
the top SSD and SD policies of its search and the baselines, fastest predicted first). The
``cfg.shortlist`` fastest of them decode the *calibration* prompts paired
(``studies/paired.py``: every policy decodes each prompt in turn, ``cfg.shortlist_rounds``
rounds) and the one with the best median rate over rounds becomes the loop's choice
(``shortlist.json``), which stages run and paired then measure on the validation prompts. The
validation prompts take no part in the choice. Imports loop_stages (never the other way).
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from loop_paired import run_paired
from loop_stages import LoopConfig

from ssdsim.policy import Policy


def shortlist_candidates(summary: dict[str, Any], n: int) -> dict[str, Policy]:
    """The ``n`` fastest predicted candidates of an optimizer summary, by label (AR left out:
    a speculative policy predicted slower than AR has nothing to confirm)."""
    rows = summary.get("candidates")
    if not isinstance(rows, list) or not rows:
        raise SystemExit(
            "shortlist: the optimizer summary has no 'candidates' (rerun stage optimize)"
        )
    out: dict[str, Policy] = {}
    for row in sorted(rows, key=lambda r: -r["tokens_per_s"]):
        pol = Policy.from_dict(row["policy"])
        if pol.mode != "ar" and row["label"] not in out and len(out) < n:
            out[row["label"]] = pol
    return out


def pick(rates: dict[str, list[float]]) -> str:
    """The name with the best median rate over rounds (ties: the first given, i.e. predicted faster)."""
    if not rates:
        raise ValueError("pick: no measured candidate")
    return max(rates, key=lambda name: statistics.median(rates[name]))


def stage_shortlist(cfg: LoopConfig) -> None:
    summary = json.loads((cfg.out / "optimize_t0" / "summary.json").read_text())
    cands = shortlist_candidates(summary, cfg.shortlist)
    predicted = {r["label"]: r["tokens_per_s"] for r in summary["candidates"]}
    measured = run_paired(cfg, cands, cfg.calib_prompts, cfg.shortlist_rounds, "shortlist")
    rates = {n: r["rounds"] for n, r in measured["policies"].items()}
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
            }
            for name in cands
        ],
        "choice": {"label": choice, "policy": cands[choice].to_dict()},
        "optimizer_top": next(iter(cands)),
    }
    (cfg.out / "shortlist.json").write_text(json.dumps(out, indent=1))
    for row in out["candidates"]:
        mark = "  <- choice" if row["label"] == choice else ""
        print(
            f"{row['label']:60s} predicted {row['predicted_tokens_per_s']:7.1f}  "
            f"measured {row['measured_tokens_per_s']:7.1f} tok/s{mark}"
        )
