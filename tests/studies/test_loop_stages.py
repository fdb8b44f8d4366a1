"""The closed loop's paired verdict: per-round ratios, the best grid point from the same rounds."""

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


def test_paired_ratio_is_per_round(stages):
    # the machine slows down in round 2: both policies alike, the ratio does not move
    r = stages.paired_ratio([110.0, 55.0, 100.0], [100.0, 50.0, 80.0])
    assert r["median"] == pytest.approx(1.1)
    assert r["min"] == pytest.approx(1.1) and r["max"] == pytest.approx(1.25)
    with pytest.raises(ValueError, match="2 and 3 rounds"):
        stages.paired_ratio([1.0, 2.0], [1.0, 2.0, 3.0])


def test_paired_verdict_picks_the_best_grid_point_of_these_rounds(stages):
    rates = {
        "chosen": [100.0, 90.0, 120.0],
        "paper_default": [95.0, 80.0, 125.0],
        "ar": [60.0, 50.0, 70.0],
        "grid sd k=4": [101.0, 91.0, 121.0],
        "grid sd k=6": [103.0, 70.0, 80.0],  # one fast round, best in no median
    }
    v = stages.paired_verdict(rates, ["grid sd k=4", "grid sd k=6"])
    assert v["best_grid"] == "grid sd k=4"
    assert v["chosen_over_best_grid"]["median"] == pytest.approx(100 / 101)
    assert v["within_2pct_of_best_grid"] is True
    assert v["chosen_over_paper_default"]["median"] == pytest.approx(100 / 95)
    assert v["faster_than_paper_default"] is True
    rates["chosen"] = [90.0, 80.0, 110.0]
    v = stages.paired_verdict(rates, ["grid sd k=4", "grid sd k=6"])
    assert v["within_2pct_of_best_grid"] is False and v["faster_than_paper_default"] is False


def test_paired_speedups_compare_ratios_to_ar(stages):
    rates = {"ar": [100.0, 50.0], "sd": [150.0, 80.0], "ssd": [220.0, 100.0]}
    predicted = {"ar": 120.0, "sd": 180.0, "ssd": 240.0}
    rows, summary = stages.paired_speedups(rates, predicted)
    assert set(rows) == {"sd", "ssd"}
    assert rows["sd"]["measured"] == pytest.approx(1.55)  # median of 1.5 and 1.6
    assert rows["sd"]["predicted"] == pytest.approx(1.5)
    assert rows["sd"]["error"] == pytest.approx(1.5 / 1.55 - 1)
    assert rows["ssd"]["measured"] == pytest.approx(2.1) and rows["ssd"]["error"] == pytest.approx(
        2 / 2.1 - 1
    )
    assert summary["points"] == 2
    assert summary["max_abs_error"] == pytest.approx(1 - 2 / 2.1)


def _split(stages, src, out, **kw) -> list[list[str]]:
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
