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
