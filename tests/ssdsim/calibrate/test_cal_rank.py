"""Acceptance by the rank of the bonus before a row: buckets, counting, and the round trip."""

from __future__ import annotations

import dataclasses

import pytest

from ssdsim import ChancePoint, Coverage, Policy, Workload
from ssdsim.calibrate import calibrate
from ssdsim.calibrate.tally import Tally
from ssdsim.chance import chance_at, rank_bucket, rank_bucket_edges
from ssdsim.profile import Chance
from ssdsim.simulator import simulate


def test_rank_buckets_are_powers_of_two_and_the_last_holds_the_rest():
    assert [rank_bucket(r, 6) for r in (1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 500)] == [
        0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5,
    ]  # fmt: skip
    assert rank_bucket(0, 6) == 5  # beyond the recorded depth
    assert rank_bucket(9, 3) == 2
    assert rank_bucket_edges(4).tolist() == [1, 3, 7]


def test_rank_counts_pool_thin_buckets_and_lend_the_first_rate_backwards():
    t = Tally()
    for _ in range(30):
        t.add_rank("draft", 1, accepted_len=1)
    for _ in range(200):
        t.add_rank("draft", 2, accepted_len=0)
        t.add_rank("draft", 3, accepted_len=2)  # ranks 2-3: 200 of 400 passed
    for _ in range(60):
        t.add_rank("draft", 5, accepted_len=0)
        t.add_rank("draft", 0, accepted_len=1)  # 4-7 and beyond the depth pool: 60 of 120
    # rank 1 is thin (30 < 100): it borrows the first well-counted bucket's rate
    assert t.run_alpha_rank("draft", min_reached=100) == pytest.approx((0.5, 0.5, 0.5))
    assert t.run_alpha_rank("draft", min_reached=20) == pytest.approx((1.0, 0.5, 0.0, 1.0))
    assert t.run_alpha_rank("fast") is None


def test_rank_fields_are_checked():
    with pytest.raises(ValueError, match="run_alpha_rank"):
        ChancePoint(temperature=0.0, rescale=1.0, alpha=(0.8,), run_alpha_rank=(0.9, 1.2))
    with pytest.raises(ValueError, match="alpha_fast_rank"):
        ChancePoint(temperature=0.0, rescale=1.0, alpha=(0.8,), alpha_fast_rank=(-0.1,))


def _point(**fields) -> ChancePoint:
    base = dict(
        temperature=0.0,
        rescale=1.0,
        alpha=(0.7,),
        alpha_fast=(0.5, 0.9),
        coverage=Coverage(beta_reject=(0.6,), r=0.6, beta_bonus=0.5, r_bonus=0.8),
        run_alpha_hit=(0.7, 0.85),
        run_alpha_jit=(0.7, 0.85),
    )
    return ChancePoint(**{**base, **fields})


def _with(profile, point):
    return dataclasses.replace(profile, chance=dataclasses.replace(profile.chance, points=(point,)))


def test_a_flat_rank_table_changes_nothing(make_toy):
    """Every bucket at the kinds' own run-0 rate: the same outcomes, uniform for uniform."""
    toy = make_toy()
    wl = Workload(batch_size=2, output_len_tokens=200, prompt_len_tokens=50, num_prompts=8)
    pol = Policy(mode="ssd", k=3, fan_out=(4, 2, 2, 2), fan_out_miss=(4, 2, 2, 2), fallback="jit")
    plain = simulate(_with(toy, _point()), pol, wl)
    flat = simulate(_with(toy, _point(run_alpha_rank=(0.7, 0.7, 0.7))), pol, wl)
    assert flat.tokens_per_step == plain.tokens_per_step
    assert flat.hit_rate == plain.hit_rate


def test_rank_tables_round_trip_and_tell_wide_trees_from_narrow(make_toy, tmp_path):
    """Truth: the draft's next guess after a deep-rank bonus is poor, the fast speculator's
    good. Traced at a narrow tree (fast and jit fallbacks), calibrated, the tables come back and predict a wide tree's
    tokens per step; the kinds' pooled rates (no tables) over-predict the wide tree."""
    toy = make_toy()
    truth_point = _point(run_alpha_rank=(0.95, 0.55, 0.15), alpha_fast_rank=(0.2, 0.4, 0.95))
    truth = _with(toy, truth_point)
    wl = Workload(batch_size=4, output_len_tokens=300, prompt_len_tokens=50, num_prompts=32)
    traces = []
    for fallback in ("fast", "jit"):  # the jit rows show the draft after deep ranks
        narrow = Policy(
            mode="ssd", k=3, fan_out=(2, 1, 1, 2), fan_out_miss=(2, 1, 1, 2), fallback=fallback
        )
        traces.append(str(tmp_path / f"narrow_{fallback}.jsonl"))
        simulate(truth, narrow, wl, trace_path=traces[-1])
    cal = calibrate(traces, base=toy)
    (fit,) = cal.points
    assert fit.point.run_alpha_rank[:3] == pytest.approx((0.95, 0.55, 0.15), abs=0.06)
    # no fast row follows a rank-1 bonus (it hits every tree here): bucket 0 borrows 2-3's
    assert fit.point.alpha_fast_rank[:3] == pytest.approx((0.4, 0.4, 0.95), abs=0.06)

    wide = Policy(
        mode="ssd", k=3, fan_out=(12, 8, 6, 4), fan_out_miss=(12, 8, 6, 4), fallback="fast"
    )
    want = simulate(truth, wide, wl).tokens_per_step
    got = simulate(cal.profile, wide, wl).tokens_per_step
    assert got == pytest.approx(want, rel=0.015)  # 0.4% off when written
    pooled = dataclasses.replace(fit.point, run_alpha_rank=(), alpha_fast_rank=())
    off = simulate(_with(cal.profile, pooled), wide, wl).tokens_per_step
    assert off / want - 1 > 0.03  # 3.7% over when written


def test_chance_at_moves_the_tables_with_temperature(make_toy):
    at = chance_at(Chance(points=(_point(run_alpha_rank=(0.9, 0.5), alpha_fast_rank=(0.4,)),)), 0.0)
    assert at.run_alpha_rank == pytest.approx((0.9, 0.5))
    assert at.alpha_fast_rank == pytest.approx((0.4,))
    warm = chance_at(Chance(points=(_point(run_alpha_rank=(0.9, 0.5)),)), 0.5)
    assert warm.run_alpha_rank[0] < 0.9  # the temperature model lowers acceptance
