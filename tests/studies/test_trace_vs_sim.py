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
    for key in ("hit_after_hit_full", "hit_after_hit_part", "hit_after_miss_part"):
        assert ratios[key] == pytest.approx(1.0), key
    assert trace_vs_sim.main(["paper-llama70b-h100", str(trace)]) == 0
    assert _ratios(capsys.readouterr().out)["step_ms"] != pytest.approx(1.0, rel=0.05)


def test_missing_trace_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        trace_vs_sim.main(["embedded-cpu", str(tmp_path / "none.jsonl")])
    assert "none.jsonl" in capsys.readouterr().err


def test_hit_rate_by_the_row_before():
    """Sequence 0: miss (part) -> hit (full) -> hit (part) -> miss; sequence 1: hit (part) ->
    hit. After a full hit 1 of 1 hit; after a partial hit 1 of 2; after a partial miss 1 of 1;
    no row followed a full miss (NaN)."""
    import math

    from ssdsim.trace import SeqOutcome, StepRecord, Trace, TraceHeader

    def row(seq: int, hit: bool, accepted: int, proposed: int = 3) -> SeqOutcome:
        return SeqOutcome(seq, accepted, accepted + 1, proposed, hit)

    steps = [
        StepRecord(0, 0.0, 1.0, [row(0, False, 1), row(1, True, 2)]),
        StepRecord(1, 1.0, 2.0, [row(0, True, 3), row(1, True, 0)]),
        StepRecord(2, 2.0, 3.0, [row(0, True, 1)]),
        StepRecord(3, 3.0, 4.0, [row(0, False, 0)]),
    ]
    head = TraceHeader("executor", Policy(mode="sd", k=3).to_dict(), {"batch_size": 2})
    got = trace_vs_sim.hit_after(Trace(head, steps, None))
    assert got["hit_after_hit_full"] == 1.0
    assert got["hit_after_hit_part"] == 0.5
    assert got["hit_after_miss_part"] == 1.0
    assert math.isnan(got["hit_after_miss_full"])


def test_an_sd_trace_has_no_hit_rates(tmp_path, capsys):
    """SD rows carry no cache hit: the hit-rate rows are NaN, not an error."""
    wl = Workload(batch_size=1, output_len_tokens=24, prompt_len_tokens=50, num_prompts=2)
    trace = tmp_path / "sd.jsonl"
    simulate(load_profile("embedded-cpu"), Policy(mode="sd", k=3), wl, trace_path=trace)
    assert trace_vs_sim.main(["embedded-cpu", str(trace)]) == 0
    ratios = _ratios(capsys.readouterr().out)
    assert ratios["tokens_per_row"] == pytest.approx(1.0)
    assert all(v != v for k, v in ratios.items() if k.startswith("hit_after"))
