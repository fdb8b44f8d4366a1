"""studies/paired.py on the smoke pair: every policy measured each round, outputs checked first."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def paired():
    sys.path.insert(0, str(ROOT / "studies"))
    import paired

    return paired


def test_paired_runs_every_policy_each_round(paired, smoke_cache, tmp_path, caplog):
    pols = {
        "ar": {"mode": "ar"},
        "sd": {"mode": "sd", "k": 2},
        "ssd": {"mode": "ssd", "k": 2, "fan_out": [2, 1, 2], "fallback": "fast"},
        "ssd jit": {"mode": "ssd", "k": 1, "fan_out": [2, 2]},
    }
    caplog.set_level(logging.WARNING)
    (tmp_path / "p.json").write_text(json.dumps(pols))
    out = tmp_path / "paired.json"
    argv = ["--policies", str(tmp_path / "p.json"), "--pair", "smoke", "--prompts", "smoke8"]
    argv += ["--num-prompts", "2", "--max-new-tokens", "8", "--rounds", "2", "-o", str(out)]
    assert paired.main(argv) == 0
    res = json.loads(out.read_text())
    assert res["rounds"] == 2 and res["num_prompts"] == 2
    assert set(res["policies"]) == set(pols)
    for r in res["policies"].values():
        assert len(r["rounds"]) == 2 and all(x > 0 for x in r["rounds"])
    if len(os.sched_getaffinity(0)) >= 2:  # every SSD engine's draft got its own core
        assert "only one CPU core" not in caplog.text


def test_bad_policies_file_is_named(paired, tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text("[1, 2]")
    with pytest.raises(SystemExit, match=r"p\.json: expected a non-empty object"):
        paired.main(["--policies", str(bad), "-o", str(tmp_path / "o.json")])


def test_shortlist_stage_measures_candidates_and_the_loop_takes_its_choice(smoke_cache, tmp_path):
    sys.path.insert(0, str(ROOT / "studies"))
    import loop_shortlist
    import loop_stages

    cfg = loop_stages.LoopConfig(
        pair="smoke",
        prompts="smoke8",
        out=tmp_path,
        num_prompts=2,
        max_new_tokens=8,
        repeats=1,
        n_trials=1,
        shortlist=2,
        shortlist_rounds=2,
    )
    loop_stages.split_prompts(cfg)
    (tmp_path / "optimize_t0").mkdir()
    cands = [
        ("ar", 900.0, {"mode": "ar"}),
        ("ssd", 500.0, {"mode": "ssd", "k": 2, "fan_out": [2, 1, 2], "fallback": "fast"}),
        ("sd", 400.0, {"mode": "sd", "k": 2}),
        ("sd k=1", 300.0, {"mode": "sd", "k": 1}),  # beyond the shortlist of 2
    ]
    summary = {
        "candidates": [{"label": n, "tokens_per_s": r, "policy": p} for n, r, p in cands],
        "baselines": {"ar": {"tokens_per_s": 900.0}},
    }
    (tmp_path / "optimize_t0" / "summary.json").write_text(json.dumps(summary))
    loop_shortlist.stage_shortlist(cfg)
    res = json.loads((tmp_path / "shortlist.json").read_text())
    assert [c["label"] for c in res["candidates"]] == ["ssd", "sd"]  # AR: measured, not a candidate
    assert (
        len(res["ar_rounds"]) == 2 and res["candidates"][0]["predicted_speedup_vs_ar"] == 500 / 900
    )
    assert res["prompts"] == str(cfg.calib_prompts)  # chosen on calibration prompts only
    best = max(res["candidates"], key=lambda c: c["measured_tokens_per_s"])
    assert res["choice"]["label"] == best["label"]
    assert all(len(c["rounds"]) == 2 for c in res["candidates"])
    assert loop_stages.chosen_policy(cfg).to_dict() == best["policy"]
