"""Stage shortlist's choice: the optimizer's fastest predicted candidates, AR left out; the best
median over rounds wins, whatever was predicted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shortlist():
    sys.path.insert(0, str(ROOT / "studies"))
    import loop_shortlist

    return loop_shortlist


def _row(label: str, rate: float, policy: dict) -> dict:
    return {"label": label, "tokens_per_s": rate, "policy": policy}


def test_candidates_are_the_fastest_predicted_without_ar(shortlist):
    summary = {
        "candidates": [
            _row("sd k=4", 180.0, {"mode": "sd", "k": 4}),
            _row("ar", 300.0, {"mode": "ar"}),  # never a candidate, however fast
            _row("ssd k=2", 200.0, {"mode": "ssd", "k": 2, "fan_out": [1, 1, 1]}),
            _row("sd k=2", 170.0, {"mode": "sd", "k": 2}),
        ]
    }
    got = shortlist.shortlist_candidates(summary, 2)
    assert list(got) == ["ssd k=2", "sd k=4"]
    assert got["sd k=4"].k == 4 and got["ssd k=2"].mode == "ssd"
    assert len(shortlist.shortlist_candidates(summary, 10)) == 3
    # near-copies of one policy lead: the best SD and each SSD fallback go first
    fast = {"mode": "ssd", "k": 8, "fan_out": [0] * 8 + [1], "fallback": "fast"}
    copies = [_row(f"fast {i}", 230.0 - i, fast) for i in range(4)]
    jit = _row("jit", 190.0, {"mode": "ssd", "k": 4, "fan_out": [2] * 5})
    got = shortlist.shortlist_candidates({"candidates": [*copies, jit, *summary["candidates"]]}, 4)
    assert list(got) == ["fast 0", "ssd k=2", "jit", "sd k=4"]
    with pytest.raises(SystemExit, match="no 'candidates'"):
        shortlist.shortlist_candidates({"best": {}}, 2)


def test_pick_takes_the_best_median_over_rounds(shortlist):
    rates = {"predicted first": [200.0, 150.0, 150.0], "second": [160.0, 170.0, 100.0]}
    assert shortlist.pick(rates) == "second"  # medians 150 and 160: one lucky round does not win
    assert shortlist.pick({"a": [1.0], "b": [1.0]}) == "a"  # ties: the one predicted faster
    with pytest.raises(ValueError):
        shortlist.pick({})
