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
