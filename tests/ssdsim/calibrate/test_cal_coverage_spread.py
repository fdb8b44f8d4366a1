"""Sequences that differ in coverage (``ChancePoint.coverage_spread``): the simulator gives each
its multiplier on the odds of a miss, and calibration finds the spread from the traced ranks
(and none where sequences are alike).

The oracle is the truth the traces were simulated from, and the traced hits themselves."""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np
import pytest

from ssdsim import ChancePoint, Coverage, Workload, read_trace, uniform_ssd
from ssdsim.calibrate import calibrate
from ssdsim.chance import odds_coverage
from ssdsim.simulator import simulate

WL = Workload(batch_size=1, output_len_tokens=400, prompt_len_tokens=50, num_prompts=24)
POLICY = uniform_ssd(3, 2, "jit")


def _profile(make_toy, spread: tuple[float, ...]):
    point = ChancePoint(
        temperature=0.0,
        rescale=1.0,
        alpha=(0.7,),
        coverage=Coverage(beta_reject=(0.5,), r=0.6, beta_bonus=0.4, r_bonus=0.8),
        run_alpha_hit=(0.7, 0.8),
        run_alpha_jit=(0.7, 0.8),
        coverage_spread=spread,
    )
    toy = make_toy()
    return dataclasses.replace(toy, chance=dataclasses.replace(toy.chance, points=(point,)))


def _hit_rates(path) -> list[float]:
    hits: dict[int, list[bool]] = {}
    for step in read_trace(path).steps:
        for o in step.seqs:
            hits.setdefault(o.seq, []).append(bool(o.cache_hit))
    return [statistics.fmean(v) for v in hits.values()]


def test_odds_coverage_moves_the_odds_of_a_miss():
    c = np.array([0.0, 0.5, 0.8, 1.0])
    assert odds_coverage(c, 1.0).tolist() == pytest.approx(c.tolist())
    assert odds_coverage(c, 4.0).tolist() == pytest.approx([0.0, 0.2, 0.5, 1.0])


def test_coverage_spread_round_trip(make_toy, tmp_path):
    alike, apart = tmp_path / "alike.jsonl", tmp_path / "apart.jsonl"
    simulate(_profile(make_toy, ()), POLICY, WL, trace_path=alike)
    simulate(_profile(make_toy, (0.25, 4.0)), POLICY, WL, trace_path=apart)
    # the simulator deals the multipliers: hit rates by sequence spread far more
    assert statistics.pstdev(_hit_rates(apart)) > 2.5 * statistics.pstdev(_hit_rates(alike))
    (fit,) = calibrate([str(apart)], base=make_toy()).points
    spread = fit.point.coverage_spread
    assert len(spread) == WL.num_prompts
    low, high = statistics.median(spread[:12]), statistics.median(spread[12:])
    assert high / low == pytest.approx(16.0, rel=0.5)
    # alike sequences: what differs between them is noise, which the fit shrinks away
    (same,) = calibrate([str(alike)], base=make_toy()).points
    narrow = same.point.coverage_spread
    assert not narrow or max(narrow) / min(narrow) < 1.5


def test_a_coverage_spread_leaves_sd_alone(make_toy):
    sd = dataclasses.replace(POLICY, mode="sd", fan_out=(), fan_out_miss=(), fallback="jit")
    a = simulate(_profile(make_toy, ()), sd, WL)
    b = simulate(_profile(make_toy, (0.25, 4.0)), sd, WL)
    assert a == b
