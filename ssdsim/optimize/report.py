"""What a study reports: the table printed by the CLI and ``summary.json`` / ``policy.json`` in the out dir.

summary.json holds ``best`` and ``baselines`` (``ar``, ``sd``, ``paper_default``), each with
``tokens_per_s`` (per sequence), ``batch_tokens_per_s``, ``hit_rate``, ``mean_accepted_len``,
``tokens_per_step``, the policy and its speedups (in the study's ``objective``); ``best_ssd`` when the best policy is not SSD;
``candidates``: every re-evaluated policy that fits the cache memory, fastest first (the top
SSD and SD policies of the search and the baselines: a shortlist to confirm on hardware);
the study's name, storage and trial count; and how the numbers were re-evaluated.
policy.json is ``best``'s Policy (``Policy.save``), read by the executor.

Never imports torch, executor or kernels.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ssdsim.optimize.objective import Evaluation
from ssdsim.optimize.select import Result
from ssdsim.optimize.settings import Settings
from ssdsim.profile import Profile
from ssdsim.workload import Workload

ROLES = (("best", "best"), ("paper_default", "paper default SSD"), ("sd", "best SD"), ("ar", "AR"))


def _ratio(a: float, b: float | None) -> float | None:
    return a / b if b else None


def row(ev: Evaluation, result: Result) -> dict[str, Any]:
    """One evaluation as a summary entry, with speedups against the baselines."""
    ar, sd, paper = (result.baselines.get(n) for n in ("ar", "sd", "paper_default"))
    out = ev.to_dict()
    m = result.objective
    out["speedup_vs_ar"] = _ratio(ev.rate(m), ar.rate(m) if ar else None)
    out["speedup_vs_sd"] = _ratio(ev.rate(m), sd.rate(m) if sd else None)
    out["speedup_vs_paper_default"] = _ratio(ev.rate(m), paper.rate(m) if paper else None)
    out["search_tokens_per_s"] = result.search_values.get(ev.label)  # the objective's value
    out["fits_cache_memory"] = ev.cache_memory_bytes <= result.cache_limit_bytes
    return out


def summary_dict(
    result: Result, profile: Profile, workload: Workload, settings: Settings
) -> dict[str, Any]:
    work = result.reeval_workload
    out: dict[str, Any] = {
        "profile": profile.name,
        "workload": workload.to_dict(),
        "study": result.study_name,
        "storage": result.storage,
        "n_trials": result.n_trials,
        "objective": result.objective,
        "seed": settings.seed,
        "reevaluation": {
            "seeds": settings.reeval_seeds,
            "num_prompts": work.total_prompts if work else None,
            "top_n": settings.top_n,
        },
        "cache_memory_limit_bytes": result.cache_limit_bytes,
        "replay": settings.replay.source
        if settings.replay is not None and workload.temperature == 0
        else None,
        "elapsed_s": result.elapsed_s,
        "best": row(result.best, result),
        "baselines": {name: row(ev, result) for name, ev in result.baselines.items()},
        "candidates": [row(ev, result) for ev in result.candidates],
    }
    if result.best_ssd is not None and result.best_ssd.label != result.best.label:
        out["best_ssd"] = row(result.best_ssd, result)
    return out


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def table_rows(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = [("best", summary["best"])]
    if "best_ssd" in summary:
        rows.append(("best SSD", summary["best_ssd"]))
    rows += [
        (title, summary["baselines"][key])
        for key, title in ROLES[1:]
        if key in summary["baselines"]
    ]
    return rows


def format_table(summary: dict[str, Any]) -> str:
    """The table the CLI prints: policy, tokens/s (per sequence and per batch), speedups (in the
    study's objective), hit rate, mean accepted length."""
    head = ("", "policy", "tokens/s", "±", "batch tok/s", "vs AR", "vs SD", "hit rate", "accepted")
    lines = [head]
    for title, r in table_rows(summary):
        lines.append(
            (
                title,
                r["label"] + ("" if r["fits_cache_memory"] else " (over cache memory)"),
                _fmt(r["tokens_per_s"], ".1f"),
                _fmt(r["tokens_per_s_std"], ".1f"),
                _fmt(r["batch_tokens_per_s"], ".1f"),
                _fmt(r["speedup_vs_ar"], ".2f") + "x",
                _fmt(r["speedup_vs_sd"], ".2f") + "x",
                _fmt(r["hit_rate"], ".3f"),
                _fmt(r["mean_accepted_len"], ".2f"),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    text.insert(1, "-" * len(text[0]))
    return "\n".join(text)


def write_outputs(result: Result, summary: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """policy.json and summary.json in ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"policy": out_dir / "policy.json", "summary": out_dir / "summary.json"}
    result.best.policy.save(paths["policy"])
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return paths
