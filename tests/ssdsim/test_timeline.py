"""Timeline export: spans per step from a trace, and the Chrome trace JSON CLI."""

from __future__ import annotations

import json

import pytest

from ssdsim import Policy, Workload, load_profile, paper_default
from ssdsim.simulator import simulate
from ssdsim.timeline import chrome_trace, main, spans
from ssdsim.trace import read_trace

WL = Workload(batch_size=2, output_len_tokens=40, prompt_len_tokens=30, num_prompts=2)


@pytest.fixture(scope="module")
def ssd_trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("tl") / "ssd.jsonl"
    simulate(load_profile("embedded-cpu"), paper_default(), WL, trace_path=path)
    return path


def test_ssd_spans_overlap_draft_and_target(ssd_trace):
    trace = read_trace(ssd_trace)
    got = spans(trace, 0, 6)
    lanes = {(s.lane, s.name) for s in got}
    assert {("target", "verify"), ("target", "await draft"), ("draft", "prespec")} <= lanes
    assert ("draft", "jit") in lanes  # the first step always misses
    for s in got:
        assert s.end_s > s.start_s
    verify = [s for s in got if s.name == "verify"]
    prespec = [s for s in got if s.name == "prespec"]
    # The draft pre-speculates while the target verifies: their intervals overlap.
    assert any(p.start_s < v.end_s and v.start_s < p.end_s for p in prespec for v in verify)


def test_sd_spans_are_sequential(tmp_path):
    path = tmp_path / "sd.jsonl"
    simulate(load_profile("embedded-cpu"), Policy(mode="sd", k=3), WL, trace_path=path)
    got = spans(read_trace(path), 0, 3)
    assert [s.name for s in got if s.step == 0] == ["draft", "verify"]
    assert all(s.lane == "target" for s in got)


def test_chrome_trace_cli(ssd_trace, tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main([str(ssd_trace), "-o", str(out), "--steps", "0:4"]) == 0
    data = json.loads(out.read_text())
    events = [e for e in data["traceEvents"] if e["ph"] == "X"]
    assert {e["args"]["step"] for e in events} == {0, 1, 2, 3}
    assert all(e["dur"] > 0 and e["tid"] in (1, 2) for e in events)
    verify = next(e for e in events if e["name"] == "verify")
    assert "cache_hit" in verify["args"] and "accepted_len" in verify["args"]
    assert chrome_trace(read_trace(ssd_trace))["metadata"]["source"] == "simulator"
    assert main([str(ssd_trace), "-o", str(out), "--steps", "5:2"]) == 2
    assert "--steps" in capsys.readouterr().err
    assert main([str(tmp_path / "none.jsonl"), "-o", str(out)]) == 2
