"""studies/repredict_paired.py: a loop's paired rounds predicted again by another profile."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ssdsim import Policy, load_profile
from ssdsim.validate.compare import predict

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "studies"))
import repredict_paired  # noqa: E402

SD = Policy(mode="sd", k=4)


def _closed_loop(tmp_path: Path, **drop: bool) -> Path:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"prompt_ids": list(range(1, 40 + i))}) + "\n" for i in range(3))
    )
    pols = {
        "ar": {"policy": Policy(mode="ar").to_dict(), "label": "ar", "rounds": [100.0, 80.0]},
        "grid sd k=4": {"policy": SD.to_dict(), "label": "sd k=4", "rounds": [210.0, 160.0]},
    }
    if drop.get("ar"):
        del pols["ar"]
    paired = {"rounds": 2, "prompts": str(prompts), "num_prompts": 3, "max_new_tokens": 16}
    paired["policies"] = pols
    paired["speedup_vs_ar"] = {"grid sd k=4": {"predicted": 1.5}}
    paired["speedup_error"] = {"median_abs_error": 0.3, "max_abs_error": 0.3, "points": 1}
    path = tmp_path / "closed_loop.json"
    path.write_text(json.dumps({"paired": paired}))
    return path


def test_the_speedups_are_the_profiles_against_the_rounds(tmp_path, capsys):
    path = _closed_loop(tmp_path)
    assert repredict_paired.main([str(path), "--profile", "embedded-cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    row = out["rows"]["grid sd k=4"]
    wl = repredict_paired.paired_workload(json.loads(path.read_text())["paired"])
    assert (wl.batch_size, wl.temperature, wl.num_prompts) == (1, 0.0, 3)
    prof = load_profile("embedded-cpu")
    want = (
        predict(prof, SD, wl)["tokens_per_s"] / predict(prof, Policy(mode="ar"), wl)["tokens_per_s"]
    )
    assert row["predicted"] == pytest.approx(want)
    assert row["measured"] == pytest.approx(2.05)  # median of 2.1 and 2.0
    assert row["error"] == pytest.approx(want / 2.05 - 1)
    assert row["loop_predicted"] == 1.5
    assert out["loop_summary"]["max_abs_error"] == 0.3
    # another profile predicts another speedup from the same rounds
    other = repredict_paired.repredict(
        json.loads(path.read_text())["paired"], "paper-llama70b-h100"
    )
    assert other["rows"]["grid sd k=4"]["predicted"] != pytest.approx(want, rel=0.02)


def test_bad_input_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no 'ar'"):
        repredict_paired.main([str(_closed_loop(tmp_path, ar=True)), "--profile", "embedded-cpu"])
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(SystemExit, match="no 'paired' part"):
        repredict_paired.main([str(empty), "--profile", "embedded-cpu"])
    with pytest.raises(SystemExit, match=r"missing\.json"):
        repredict_paired.main([str(tmp_path / "missing.json"), "--profile", "embedded-cpu"])
