"""studies/trace_vs_sim.py: a trace beside the simulator's, part by part."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ssdsim import Policy, Workload, load_profile
from ssdsim.simulator import simulate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "studies"))
import trace_vs_sim  # noqa: E402


def _ratios(out: str) -> dict[str, float]:
    rows = [line.split() for line in out.splitlines() if " measured " in line]
    return {r[0]: float(r[-1]) for r in rows}


def test_a_simulated_trace_matches_its_own_simulation(tmp_path, capsys):
    """Same profile, policy, workload and seed: every part agrees; another profile does not."""
    profile = load_profile("embedded-cpu")
    policy = Policy(mode="ssd", k=3, fan_out=(2, 1, 1, 1), fan_out_miss=(2, 1, 1, 1))
    wl = Workload(batch_size=2, output_len_tokens=24, prompt_len_tokens=50, num_prompts=4, seed=3)
    trace = tmp_path / "t.jsonl"
    simulate(profile, policy, wl, seed=3, trace_path=trace)
    assert trace_vs_sim.main(["embedded-cpu", str(trace)]) == 0
    ratios = _ratios(capsys.readouterr().out)
    for key in ("step_ms", "verify_ms", "tokens_per_row", "tokens_per_s", "full_steps"):
        assert ratios[key] == pytest.approx(1.0), key
    assert trace_vs_sim.main(["paper-llama70b-h100", str(trace)]) == 0
    assert _ratios(capsys.readouterr().out)["step_ms"] != pytest.approx(1.0, rel=0.05)


def test_missing_trace_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        trace_vs_sim.main(["embedded-cpu", str(tmp_path / "none.jsonl")])
    assert "none.jsonl" in capsys.readouterr().err
