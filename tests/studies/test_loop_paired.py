"""The closed loop's paired verdict: per-round ratios, the best grid point from the same rounds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def paired():
    sys.path.insert(0, str(ROOT / "studies"))
    import loop_paired

    return loop_paired


def test_paired_ratio_is_per_round(paired):
    # the machine slows down in round 2: both policies alike, the ratio does not move
    r = paired.paired_ratio([110.0, 55.0, 100.0], [100.0, 50.0, 80.0])
    assert r["median"] == pytest.approx(1.1)
    assert r["min"] == pytest.approx(1.1) and r["max"] == pytest.approx(1.25)
    with pytest.raises(ValueError, match="2 and 3 rounds"):
        paired.paired_ratio([1.0, 2.0], [1.0, 2.0, 3.0])


def test_paired_verdict_picks_the_best_grid_point_of_these_rounds(paired):
    rates = {
        "chosen": [100.0, 90.0, 120.0],
        "paper_default": [95.0, 80.0, 125.0],
        "ar": [60.0, 50.0, 70.0],
        "grid sd k=4": [101.0, 91.0, 121.0],
        "grid sd k=6": [103.0, 70.0, 80.0],  # one fast round, best in no median
    }
    v = paired.paired_verdict(rates, ["grid sd k=4", "grid sd k=6"])
    assert v["best_grid"] == "grid sd k=4"
    assert v["chosen_over_best_grid"]["median"] == pytest.approx(100 / 101)
    assert v["within_2pct_of_best_grid"] is True
    assert v["chosen_over_paper_default"]["median"] == pytest.approx(100 / 95)
    assert v["faster_than_paper_default"] is True
    rates["chosen"] = [90.0, 80.0, 110.0]
    v = paired.paired_verdict(rates, ["grid sd k=4", "grid sd k=6"])
    assert v["within_2pct_of_best_grid"] is False and v["faster_than_paper_default"] is False


def test_paired_speedups_compare_ratios_to_ar(paired):
    rates = {"ar": [100.0, 50.0], "sd": [150.0, 80.0], "ssd": [220.0, 100.0]}
    predicted = {"ar": 120.0, "sd": 180.0, "ssd": 240.0}
    rows, summary = paired.paired_speedups(rates, predicted)
    assert set(rows) == {"sd", "ssd"}
    assert rows["sd"]["measured"] == pytest.approx(1.55)  # median of 1.5 and 1.6
    assert rows["sd"]["predicted"] == pytest.approx(1.5)
    assert rows["sd"]["error"] == pytest.approx(1.5 / 1.55 - 1)
    assert rows["ssd"]["measured"] == pytest.approx(2.1) and rows["ssd"]["error"] == pytest.approx(
        2 / 2.1 - 1
    )
    assert summary["points"] == 2
    assert summary["max_abs_error"] == pytest.approx(1 - 2 / 2.1)
