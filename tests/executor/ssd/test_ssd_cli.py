"""``python -m executor.run`` in SSD mode on the smoke pair: a policy file in, JSON and a trace out.

The outputs equal AR's; ``--json`` adds the hit rate, SSD efficiency and handshake latencies;
the trace carries the SSD timestamps, per-sequence hits, proposers and bonus ranks, the policy
in its header and the draft's numbers in its summary; ``--speed-probe`` times the draft on its
own core too.
"""

from __future__ import annotations

import json

import executor.run as run_cli
from ssdsim.policy import Policy
from ssdsim.trace import read_trace
from tests.executor.ssd.ssd_checks import check_ranks_predict_hits, check_step_times


def _run(capsys, *args) -> dict:
    common = ["--pair", "smoke", "--prompts", "smoke8", "--num-prompts", "6"]
    assert run_cli.main([*common, "--max-new-tokens", "24", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_ssd_run_from_a_policy_file(smoke_cache, tmp_path, capsys):
    policy = Policy(mode="ssd", k=3, fan_out=(4, 2, 1, 1), fan_out_miss=(6, 1, 1, 0))
    path = policy.save(tmp_path / "policy.json")
    trace = tmp_path / "ssd.jsonl"
    out = _run(
        capsys,
        "--policy",
        str(path),
        "--batch-size",
        "2",
        "--devices",
        "cpu",
        "--trace",
        str(trace),
        "--speed-probe",
    )
    assert out["outputs"] == _run(capsys, "--mode", "ar")["outputs"]
    assert out["mode"] == "ssd" and out["policy"] == policy.label()
    assert 0 <= out["hit_rate"] <= 1 and out["ssd_efficiency"] > 0
    assert 0 < out["handshake_p50_s"] <= out["handshake_p99_s"]
    t = read_trace(trace)
    assert Policy.from_dict(t.header.policy) == policy
    assert t.header.devices["backend"] == "gloo" and "core" in t.header.devices["draft"]
    assert t.summary.hit_rate == out["hit_rate"] and t.summary.draft_busy_s > 0
    assert t.summary.extra["handshake_samples"] == 200
    probe = t.header.devices["speed_probe"]  # both cores timed, before and after the decode
    assert probe == out["speed_probe"] and 0 < probe["target_forward_s"] < 1
    assert 0 < probe["draft_forward_s"] < 1  # timed on the draft's core (no race of sizes:
    # the smoke pair's two models are both tiny, and a busy machine can order them either way)
    assert probe["draft_forward_s"] == (probe["draft_before_s"] + probe["draft_after_s"]) / 2
    assert 0 < probe["draft_forward_cpu_s"] <= 2 * probe["draft_forward_s"]
    marks = probe["marks"]  # both cores timed between batches too
    assert (marks[0]["draft_forward_s"], marks[-1]["draft_forward_s"]) == (
        probe["draft_before_s"],
        probe["draft_after_s"],
    )
    assert len(marks) >= 3 and all(0 < m["draft_forward_s"] < 1 for m in marks)
    check_step_times(t.steps)
    check_ranks_predict_hits(t.steps, policy)
    assert sum(o.emitted_tokens for s in t.steps for o in s.seqs) == 6 * 23
