"""studies/tree_cost.py: the draft tree's seconds per step by shape and temperature, per folder."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from ssdsim.policy import Policy
from ssdsim.trace import RunSummary, TraceHeader, TraceWriter

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "studies"))
import tree_cost  # noqa: E402

UNIFORM = Policy(mode="ssd", k=4, fan_out=(3, 3, 3, 3, 3), fan_out_miss=(3, 3, 3, 3, 3))


def _write(path: Path, policy: Policy, batch: int, temp: float, step_s: float, probe_s: float):
    """A trace whose summary says each tree step took ``step_s`` (depth 2), its draft probe
    ``probe_s``."""
    wl = {"batch_size": batch, "temperature": temp}
    probe = {"target_forward_s": 2e-3, "draft_forward_s": probe_s}
    head = TraceHeader("executor", policy.to_dict(), wl, devices={"speed_probe": probe})
    extra = {"draft_tree_mean_s": 2 * step_s, "draft_tree_depth_mean": 2.0}
    summary = RunSummary(policy.mode, "p", batch, temp, 1, 1.0, 1, 1.0, 1.0, 0.0, 1.0, extra=extra)
    with TraceWriter(path, head) as w:
        w.summary(summary)


def test_sampling_cost_per_row_per_folder(tmp_path, caplog):
    """Greedy trees take 6 ms a step, sampled ones 6 ms + 20 us (calib) or 30 us (valid) a row
    at B=4, M=15; the draft probe 0.5 ms except one valid run at 1 ms whose times doubled."""
    calib, valid = tmp_path / "calib", tmp_path / "valid"
    rows = 4 * 15
    for i, (t, s) in enumerate([(0.0, 6e-3), (1.0, 6e-3 + rows * 20e-6)] * 2):
        _write(calib / f"c{i}.jsonl", UNIFORM, 4, t, s, 0.5e-3)
    _write(valid / "v0.jsonl", UNIFORM, 4, 0.0, 6e-3, 0.5e-3)
    _write(valid / "v1.jsonl", UNIFORM, 4, 1.0, 6e-3 + rows * 30e-6, 0.5e-3)
    _write(valid / "v2.jsonl", UNIFORM, 4, 1.0, 2 * (6e-3 + rows * 30e-6), 1e-3)
    _write(valid / "ar.jsonl", Policy(mode="ar"), 4, 1.0, 1.0, 1.0)  # not SSD: left out
    steps = tree_cost.collect({"calib": calib, "valid": valid})
    assert sorted(steps) == [
        ("calib", 4, 4, 15, 0.0),
        ("calib", 4, 4, 15, 1.0),
        ("valid", 4, 4, 15, 0.0),
        ("valid", 4, 4, 15, 1.0),
    ]
    probes = [p for _, p in steps[("valid", 4, 4, 15, 1.0)]]
    assert probes == pytest.approx([(6e-3 + rows * 30e-6) / 0.5e-3] * 2)
    with caplog.at_level(logging.INFO, logger="tree_cost"):
        assert tree_cost.main([f"calib={calib}", f"valid={valid}"]) == 0
    lines = [r.getMessage() for r in caplog.records if " a row" in r.getMessage()]
    assert len(lines) == 2
    assert "20.0 us" in lines[0] and lines[0].startswith("calib")
    # in seconds the run at half speed drags the median up (95 us); over the probe: 30 us
    assert "95.0 us" in lines[1]
    assert "(0.060 probes)" in lines[1]


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        tree_cost.main(["no-label"])
    with pytest.raises(SystemExit):
        tree_cost.main([f"x={tmp_path / 'missing'}"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match=r"no \*\.jsonl"):
        tree_cost.main([f"x={tmp_path / 'empty'}"])


def test_glue_beyond_the_profile_per_batch_and_lookahead(tmp_path, caplog):
    """Runs whose glue took the profile's forward of k+1 tokens plus 1.2 ms: the table reads
    1.20 ms beyond the model at each (B, k), and a ratio that depends on the forward's size."""
    from ssdsim import latency as lat
    from ssdsim.calibrate.ssd_costs import _mean_context
    from ssdsim.profile import load_profile
    from ssdsim.trace import Trace

    profile = load_profile("embedded-cpu")
    folder = tmp_path / "runs"
    for i, (k, batch) in enumerate([(4, 1), (4, 1), (8, 1), (4, 4)]):
        policy = Policy(mode="ssd", k=k, fan_out=(3,) * (k + 1), fan_out_miss=(3,) * (k + 1))
        wl = {"batch_size": batch, "temperature": 0.0, "prompt_len_tokens": [60, 100]}
        wl["output_len_tokens"] = [32, 32]
        head = TraceHeader("executor", policy.to_dict(), wl)
        glue, _ = lat.prespec_parts_s(
            profile, batch, k, 3 * (k + 1), _mean_context(Trace(head, [], None))
        )
        extra = {"draft_glue_mean_s": float(glue) + 1.2e-3, "draft_tree_mean_s": 4e-3}
        extra["draft_tree_depth_mean"] = 2.0
        summary = RunSummary("ssd", "p", batch, 0.0, 1, 1.0, 1, 1.0, 1.0, 0.0, 1.0, extra=extra)
        with TraceWriter(folder / f"r{i}.jsonl", head) as w:
            w.summary(summary)
    with caplog.at_level(logging.INFO, logger="tree_cost"):
        assert tree_cost.main([f"runs={folder}", "--profile", "embedded-cpu"]) == 0
    rows = [r.getMessage().split() for r in caplog.records]
    rows = [r for r in rows if r and r[0] == "runs" and len(r) == 7]
    assert [(r[1], r[2], r[3], r[5]) for r in rows] == [
        ("1", "4", "2", "1.20"),
        ("1", "8", "1", "1.20"),
        ("4", "4", "1", "1.20"),
    ]
    assert all(float(r[6]) > 1.0 for r in rows)
