"""The noise floor: a perfect simulator's errors against the median of a point's passes."""

from __future__ import annotations

import pytest

from ssdsim.validate.floor import MEDIAN_ABS_NORMAL, noise_floor, pass_sigmas


def _rows(sigmas: list[float], passes: int = 5) -> list[dict]:
    """Points whose passes stray from the others' mean by exactly the median a normal spread
    of ``sigma`` gives (so each point's estimate is ``sigma``)."""
    scale = MEDIAN_ABS_NORMAL * (1 + 1 / (passes - 1)) ** 0.5
    return [
        {"pass_errors": {"other_passes_adjusted": [s * scale] * passes, "other_passes": []}}
        for s in sigmas
    ]


def test_sigmas_are_read_off_the_passes_and_pooled_with_the_median():
    got = pass_sigmas(_rows([0.05, 0.05, 0.05]))
    assert [s for s, _ in got] == pytest.approx([0.05] * 3)
    wide = pass_sigmas(_rows([0.02, 0.04, 0.04, 0.2]))  # the wide one pulled toward 0.04
    assert wide[-1][0] == pytest.approx(((0.2**2 + 0.04**2) / 2) ** 0.5)
    assert pass_sigmas(_rows([0.05], passes=2)) == []


def test_the_floor_is_the_spread_of_a_median_of_passes():
    """Median of 5 normal passes: sd 0.536 sigma (a mean of 5 would be 0.447), so the median
    |error| over points is 0.6745 x 0.536 sigma."""
    f = noise_floor(_rows([0.05] * 84), draws=4000)
    assert f["median_abs_error"] == pytest.approx(0.6745 * 0.536 * 0.05, rel=0.06)
    assert f["points"] == 84 and f["passes"] == 5
    lo, hi = f["max_abs_error_p10_p90"]
    assert 0.05 < lo < f["max_abs_error"] < hi < 0.1  # the max of 84 such medians
    # more passes, a lower floor; twice the spread, twice the floor (the same draws)
    assert noise_floor(_rows([0.05] * 84), passes=15)["max_abs_error"] < f["max_abs_error"]
    twice = noise_floor(_rows([0.1] * 84), draws=4000)
    assert twice["median_abs_error"] == pytest.approx(2 * f["median_abs_error"])
    assert noise_floor(_rows([0.0] * 10))["max_abs_error"] == 0.0


def test_no_floor_without_three_passes():
    assert noise_floor(_rows([0.05] * 4, passes=2)) is None
    assert noise_floor([{"pass_errors": None}, {}]) is None
