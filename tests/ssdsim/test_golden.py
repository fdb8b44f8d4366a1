"""Golden trace of a tiny SSD scenario: any change to sampling, costs or timing shows up here.

Regenerate deliberately with ``SSDSIM_REGEN_GOLDEN=1 pytest tests/ssdsim/test_golden.py`` and
review the diff of tests/ssdsim/golden/ssd_tiny.jsonl.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ssdsim import Policy, Workload, read_trace
from ssdsim.simulator import simulate

GOLDEN = Path(__file__).with_name("golden") / "ssd_tiny.jsonl"


def test_tiny_ssd_trace_matches_golden(gpu_like, tmp_path):
    pol = Policy(mode="ssd", k=3, fan_out=(3, 2, 1, 2), fan_out_miss=(5, 2, 1, 0), fallback="jit")
    wl = Workload(
        batch_size=2, output_len_tokens=(10, 20), prompt_len_tokens=(8, 40), num_prompts=3, seed=11
    )
    path = tmp_path / "t.jsonl"
    simulate(gpu_like, pol, wl, trace_path=path)
    if os.environ.get("SSDSIM_REGEN_GOLDEN") == "1":
        shutil.copy(path, GOLDEN)
    got, want = read_trace(path), read_trace(GOLDEN)
    assert len(got.steps) == len(want.steps)
    for g, w in zip(got.steps, want.steps, strict=True):
        assert g.seqs == w.seqs
        assert (g.t_start_s, g.t_end_s, g.wait_s, g.draft_s) == pytest.approx(
            (w.t_start_s, w.t_end_s, w.wait_s, w.draft_s), rel=1e-9
        )
    assert got.summary.tokens_per_s == pytest.approx(want.summary.tokens_per_s, rel=1e-9)
