"""The closed loop's prompt split: disjoint sides, no source file on both, never shortened."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stages():
    sys.path.insert(0, str(ROOT / "studies"))
    import loop_stages

    return loop_stages


def _cfg(stages, src, out, **kw):
    out.mkdir()
    cfg = stages.LoopConfig(
        pair="smoke",
        prompts=str(src),
        out=out,
        num_prompts=2,
        max_new_tokens=8,
        repeats=1,
        n_trials=1,
        **kw,
    )
    stages.split_prompts(cfg)
    return cfg


def _split(stages, src, out, **kw) -> list[list[str]]:
    cfg = _cfg(stages, src, out, **kw)
    return [p.read_text().splitlines() for p in (cfg.valid_prompts, cfg.calib_prompts)]


def test_split_gives_the_fast_traces_more_calibration_prompts(stages, tmp_path):
    src = tmp_path / "set.jsonl"
    src.write_text("".join(f'{{"prompt_ids": [{i + 1}, 2, 3]}}\n' for i in range(10)))
    assert [len(p) for p in _split(stages, src, tmp_path / "a")] == [2, 2]
    valid, calib = _split(stages, src, tmp_path / "b", calib_fast_prompts=4)
    assert len(valid) == 2 and len(calib) == 4  # validation prompts unchanged
    assert '"prompt_ids": [1, 2, 3]' in valid[0] and '"prompt_ids": [3, 2, 3]' in valid[1]
    assert '"prompt_ids": [2, 2, 3]' in calib[0]  # odd positions: disjoint from validation
    valid, calib = _split(stages, src, tmp_path / "c", split="halves")
    assert '"prompt_ids": [6, 2, 3]' in calib[0]  # the second half


def test_interleaved_split_keeps_each_source_file_on_one_side(stages, tmp_path):
    src = tmp_path / "set.jsonl"
    files = ["a", "b", "c", "d", "e", "f", "a", "c", "g", "h"]  # prompt 7 reuses file c
    src.write_text(
        "".join(f'{{"prompt_ids": [{i + 1}], "source": "{f}"}}\n' for i, f in enumerate(files))
    )
    valid, calib = _split(stages, src, tmp_path / "a", calib_fast_prompts=4)
    sources = [[json.loads(x)["source"] for x in side] for side in (valid, calib)]
    assert sources[1] == ["b", "d", "f", "h"]  # c (also a validation file) left out
    assert not set(sources[0]) & set(sources[1])
    with pytest.raises(
        ValueError, match=r"leaves 4 prompts for prompts_calib\.jsonl, expected at least 5"
    ):
        _split(stages, src, tmp_path / "b", calib_fast_prompts=5)


def test_calibration_passes_decode_different_prompts(stages, tmp_path):
    """Greedy passes over the same prompts repeat token for token: each pass rotates them."""
    src = tmp_path / "set.jsonl"
    src.write_text("".join(f'{{"prompt_ids": [{i + 1}, 2, 3]}}\n' for i in range(20)))
    cfg = _cfg(stages, src, tmp_path / "a", calib_fast_prompts=5)
    firsts = []
    for repeat in range(3):
        lines = stages.pass_prompts(cfg, repeat).read_text().splitlines()
        assert sorted(lines) == sorted(cfg.calib_prompts.read_text().splitlines())
        firsts.append(lines[: cfg.num_prompts])
    assert firsts[0] != firsts[1] and firsts[1] != firsts[2]  # the runs' first 2 prompts differ
    assert stages.pass_prompts(cfg, 1) == tmp_path / "a" / "prompts_calib_p1.jsonl"


def test_calibration_covers_every_batch_size_the_benchmark_compares(stages):
    """Batch 8 (bench_executor's second size) has greedy AR, SD and SSD runs of its own, and SSD
    has a k=2 run: a cell the traces never saw is extrapolated from its neighbours."""
    pts = stages.calibration_points(ssd=True)
    at_b8 = {p.policy.mode for p in pts if p.batch_size == stages.CALIB_B8}
    assert at_b8 == {"ar", "sd", "ssd"}
    ssd_ks = {p.policy.k for p in pts if p.policy.mode == "ssd"}
    assert {2, 4, 8} <= ssd_ks
    # every verification width of the validation grid (k = 2..8) has runs at B = 1 and 4
    widths = {(p.batch_size, p.policy.k) for p in pts if p.policy.mode == "sd"}
    assert {(b, k) for b in (1, 4) for k in (2, 4, 6, 8)} <= widths
    # jit's answer is measured at both batch sizes the validation grid runs jit at
    jit = {p.batch_size for p in pts if p.policy.mode == "ssd" and p.policy.fallback == "jit"}
    assert {1, 4} <= jit
    # sampling: AR at T=1 (its cost per step apart from per row) and jit at T=1 at B=1 and 4
    assert {(p.policy.mode, p.batch_size) for p in pts if p.temperature > 0} >= {
        ("ar", 1),
        ("ar", 4),
        ("sd", 1),
        ("sd", 4),
        ("ssd", 1),
        ("ssd", 4),
    }
    hot_jit = {
        p.batch_size
        for p in pts
        if p.policy.mode == "ssd" and p.policy.fallback == "jit" and p.temperature > 0
    }
    assert {1, 4} <= hot_jit
    # tree sampling's cost per row: trees of two widths at B=4 ran at both temperatures
    both = [
        (p.policy.k, p.policy.fan_out)
        for p in pts
        if p.policy.mode == "ssd" and p.batch_size == 4 and p.temperature > 0
        if any(
            (q.policy.k, q.policy.fan_out, q.batch_size, q.temperature)
            == (p.policy.k, p.policy.fan_out, 4, 0.0)
            for q in pts
        )
    ]
    assert len({sum(f) for _, f in both}) >= 2
    assert {p.policy.mode for p in stages.calibration_points(ssd=False)} == {"ar", "sd"}
    assert len({p.key for p in pts}) == len(pts)  # no point twice (their files would clash)


def test_calibration_passes_spread_over_the_validation_passes(stages):
    """3 calibration passes beside 5 validation passes: the first, middle and last stretch."""
    order = stages.measure_schedule(3, 5)
    assert order == [
        ("calib", 0),
        ("valid", 0),
        ("valid", 1),
        ("calib", 1),
        ("valid", 2),
        ("valid", 3),
        ("calib", 2),
        ("valid", 4),
    ]
    for c, v in ((1, 1), (1, 5), (3, 3), (5, 3), (2, 4), (0, 2), (3, 0)):
        got = stages.measure_schedule(c, v)
        assert sorted(got) == sorted(
            [("calib", r) for r in range(c)] + [("valid", r) for r in range(v)]
        )
        assert [r for k, r in got if k == "calib"] == list(range(c))  # each kind in order
        if c and v:
            assert got[0] == ("calib", 0)  # the grid's profile comes from a calibration pass
