"""Acceptance by run length: counting, fitting, and predicting one k from the steps of another."""

from __future__ import annotations

import dataclasses

import pytest

from ssdsim import ChancePoint, Coverage, Policy, Workload
from ssdsim.calibrate import calibrate
from ssdsim.calibrate.tally import Tally, next_run
from ssdsim.chance import chance_at
from ssdsim.profile import Chance
from ssdsim.simulator import simulate
from ssdsim.trace import SeqOutcome


def _o(a, proposed=4, rank=None, proposer="draft"):
    return SeqOutcome(
        seq=0,
        accepted_len=a,
        emitted_tokens=a + 1,
        proposed=proposed,
        bonus_rank=rank,
        proposer=proposer,
    )


def test_a_run_ends_at_a_rejection_and_goes_on_through_a_rank_one_bonus():
    assert next_run(None, _o(1), "hit", ranked=False) == 0
    assert next_run(0, _o(4, rank=1), "hit", ranked=True) == 5
    assert next_run(3, _o(4, rank=1), "jit", ranked=True) == 8
    assert next_run(3, _o(4, rank=2), "hit", ranked=True) == 0
    assert next_run(3, _o(4), "hit", ranked=True) == 0  # recorded ranks, none: beyond the depth
    assert next_run(3, _o(4), "hit", ranked=False) is None  # nobody recorded the bonus rank
    assert next_run(None, _o(4, rank=1), "hit", ranked=True) is None
    assert next_run(3, _o(2, proposer="fast"), "fast", ranked=True) is None


def test_run_counts_and_tables():
    t = Tally()
    t.add_run("sd", 2, accepted_len=1, proposed=4)  # run 2 passed, run 3 rejected
    assert t.run_reached["sd"][2:4] == [1, 1] and t.run_passed["sd"][2:4] == [1, 0]
    t = Tally()
    for _ in range(150):
        t.add_run("sd", 0, accepted_len=1, proposed=2)  # run 0 passes, run 1 fails
        t.add_run("hit", 0, accepted_len=2, proposed=2)  # both pass
    for _ in range(30):
        t.add_run("jit", 0, accepted_len=0, proposed=2)
    tables = t.run_tables(min_reached=20)
    # each kind has its own run-0 rate; runs >= 1 are pooled over the kinds (150 of 300 passed)
    assert tables["sd"] == pytest.approx((1.0, 0.5))
    assert tables["hit"] == pytest.approx((1.0, 0.5))
    assert tables["jit"] == pytest.approx((0.0, 0.5))


def test_the_last_rate_pools_enough_long_runs():
    t = Tally()
    for _ in range(300):
        t.add_run("sd", 0, accepted_len=0, proposed=1)
    for _ in range(40):
        t.add_run("sd", 0, accepted_len=4, proposed=4)  # 40 runs that reach 1..3 and all pass
    # runs 1..3 (40 proposals each, all accepted) would end the table with a rate of 1.0 that
    # repeats forever; 120 < 200 proposals, so they pool with run 0 into one rate
    assert t.run_alpha("sd", min_reached=20, tail_min=200) == pytest.approx((160 / 460,))
    assert t.run_alpha("sd", min_reached=20, tail_min=100) == pytest.approx((40 / 340, 1.0))


def test_run_alpha_fields_are_checked_and_borrowed():
    with pytest.raises(ValueError, match="run_alpha_sd"):
        ChancePoint(temperature=0.0, rescale=1.0, alpha=(0.8,), run_alpha_sd=(1.5,))
    at = chance_at(Chance(points=(_point(run_alpha_hit=(0.9, 0.8)),)), 0.0)
    assert at.run_alpha_for("sd") == at.run_alpha_for("jit") == pytest.approx((0.9, 0.8))
    assert at.run_alpha_for("fast") == ()


def _point(**runs) -> ChancePoint:
    return ChancePoint(
        temperature=0.0,
        rescale=1.0,
        alpha=(0.7,),
        coverage=Coverage(beta_reject=(0.3,), beta_bonus=0.3),
        **runs,
    )


def test_a_long_lookahead_is_predicted_from_short_steps(make_toy, tmp_path):
    """Acceptance that builds up along a run (0.5 after a rejection, 0.9 after a match): SD at
    k = 2 traced and calibrated predicts SD at k = 8, which its steps never reached; rates by
    position pooled from k = 2 do not (their second position mixes steps that start a run with
    steps that continue one)."""
    toy = make_toy()
    truth = dataclasses.replace(
        toy,
        chance=dataclasses.replace(toy.chance, points=(_point(run_alpha_sd=(0.5, 0.9)),)),
    )
    wl = Workload(batch_size=1, output_len_tokens=400, prompt_len_tokens=50, num_prompts=16)
    p = tmp_path / "sd2.jsonl"
    simulate(truth, Policy(mode="sd", k=2), wl, trace_path=p)
    cal = calibrate([str(p)], base=toy)
    (fit,) = cal.points
    assert fit.point.run_alpha_sd[:2] == pytest.approx((0.5, 0.9), abs=0.04)

    k8 = Policy(mode="sd", k=8)
    want = simulate(truth, k8, wl).tokens_per_step
    got = simulate(cal.profile, k8, wl).tokens_per_step
    assert got == pytest.approx(want, rel=0.05)
    by_position = dataclasses.replace(
        fit.point, run_alpha_sd=(), run_alpha_hit=(), run_alpha_jit=()
    )
    old = dataclasses.replace(
        cal.profile, chance=dataclasses.replace(cal.profile.chance, points=(by_position,))
    )
    assert abs(simulate(old, k8, wl).tokens_per_step / want - 1) > 0.10
