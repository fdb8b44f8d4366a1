"""Counting acceptance and ranks from sequence-steps (no simulator)."""

from __future__ import annotations

import numpy as np
import pytest

from ssdsim.calibrate.chance_fit import fit_power_law
from ssdsim.calibrate.tally import Tally, coverage_table, kind_of
from ssdsim.trace import SeqOutcome


def _o(a, proposed=4, hit=None, proposer="draft", rank=None):
    return SeqOutcome(
        seq=0,
        accepted_len=a,
        emitted_tokens=a + 1,
        proposed=proposed,
        cache_hit=hit,
        bonus_rank=rank,
        proposer=proposer,
    )


def test_kinds():
    assert kind_of("ar", _o(0, 0, proposer="none")) is None
    assert kind_of("sd", _o(2)) == "hit"
    assert kind_of("ssd", _o(2, hit=True)) == "hit"
    assert kind_of("ssd", _o(2, hit=False)) == "jit"
    assert kind_of("ssd", _o(1, 2, hit=False, proposer="fast")) == "fast"
    assert kind_of("ssd", _o(0, 0, hit=False, proposer="none")) == "fast"  # no n-gram match


def test_conditional_rates_per_position():
    t = Tally()
    for a in (0, 1, 2, 4, 4):
        t.add("hit", _o(a), ranked=False)
    # position 0 reached 5 times, passed 4; position 1: 4/3; 2: 3/2; 3: 2/2
    assert t.alpha("hit", min_reached=1) == pytest.approx((4 / 5, 3 / 4, 2 / 3, 1.0))
    # position 3 was reached twice only: too few to stand alone, so it is dropped (repeats 2/3)
    assert t.alpha("hit", min_reached=3) == pytest.approx((4 / 5, 3 / 4, 2 / 3))
    # with too few everywhere, every position is pooled into one rate
    assert t.alpha("hit", min_reached=99) == pytest.approx((11 / 14,))


def test_fast_rows_with_fewer_proposals_count_k_positions():
    t = Tally()
    t.add("fast", _o(0, 0, hit=False, proposer="none"), ranked=False, proposed=4)
    t.add("fast", _o(2, 2, hit=False, proposer="fast"), ranked=False, proposed=4)
    t.add("fast", _o(1, 4, hit=False, proposer="fast"), ranked=False, proposed=4)
    # position 0: reached 3, passed 2; 1: reached 2, passed 1; 2: reached 1 (the 2-proposal row), passed 0
    assert t.alpha("fast", min_reached=1) == pytest.approx((2 / 3, 1 / 2, 0.0))


def test_ranks_and_coverage_tables():
    t = Tally()
    for a, rank in ((0, 1), (0, 3), (0, None), (4, 1)):
        t.add("hit", _o(a, rank=rank), ranked=True)
    assert t.reject_ranks["hit"][0] == [1, 3, 0] and t.bonus_ranks["hit"] == [1]
    assert coverage_table([1, 3, 0], 4).tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])


def test_power_law_exact_on_exact_tables():
    fans = np.arange(1, 17)
    tables = [1 - b * fans**-0.8 for b in (0.5, 0.3)]
    law = fit_power_law(tables, [1000, 1000])
    assert law.r == pytest.approx(0.8, abs=1e-6)
    assert law.betas == pytest.approx((0.5, 0.3), rel=1e-6)
    assert law.max_residual < 1e-9
    assert fit_power_law([np.ones(4)], [10]).betas == (0.05,)  # always covered at F=1: 0.5 / n
