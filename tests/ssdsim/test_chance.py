"""Chance model: acceptance, coverage, ranks, temperature/rescale and measured points (no SimPy)."""

from __future__ import annotations

import numpy as np
import pytest

from ssdsim import Chance, ChancePoint, Coverage, SchemaError, TemperatureModel
from ssdsim import chance as ch


def test_iid_accept_pmf():
    a, k = 0.7, 4
    pmf = ch.accept_pmf((a,), k)
    assert pmf == pytest.approx([a**j * (1 - a) for j in range(k)] + [a**k])
    assert pmf.sum() == pytest.approx(1.0)
    assert ch.accept_cdf((a,), k)[-1] == 1.0
    assert ch.mean_accepted_len((a,), k) == pytest.approx(sum(j * p for j, p in enumerate(pmf)))


def test_per_position_rates_repeat_last():
    assert ch.position_rates((0.9, 0.8), 4).tolist() == [0.9, 0.8, 0.8, 0.8]
    pmf = ch.accept_pmf((0.9, 0.5), 2)
    assert pmf == pytest.approx([0.1, 0.9 * 0.5, 0.9 * 0.5])


def test_empirical_accepted_lengths_to_rates_and_back():
    alpha = (0.9, 0.8, 0.6, 0.7)
    pmf = ch.accept_pmf(alpha, 4)
    assert ch.alpha_from_accepted_dist(pmf) == pytest.approx(alpha)
    assert ch.alpha_from_accepted_dist(pmf * 1000) == pytest.approx(alpha)  # counts work too
    assert ch.alpha_from_accepted_dist([5, 0, 0]) == (0.0, 0.0)  # never reached: repeat previous
    with pytest.raises(SchemaError, match="accepted-length distribution"):
        ch.alpha_from_accepted_dist([0.5, -0.1, 0.6])


def test_power_law_coverage_and_tables():
    cov = Coverage(beta_reject=(0.4, 0.2), r=1.0, beta_bonus=0.5, r_bonus=2.0)
    assert ch.coverage(cov, 0, 3, [0, 1, 2, 4]).tolist() == pytest.approx([0.0, 0.6, 0.8, 0.9])
    assert ch.coverage(cov, 2, 3, [2]).tolist() == pytest.approx([0.9])  # last beta repeats
    assert ch.coverage(cov, 3, 3, [1, 2]).tolist() == pytest.approx(
        [0.5, 1 - 0.5 / 4]
    )  # bonus: beta_bonus, r_bonus
    tab = Coverage(beta_reject=(0.4,), r=1.0, reject_tables=((0.5, 0.55),))
    got = ch.coverage(tab, 0, 3, [0, 1, 2, 3, 8])
    assert got.tolist() == pytest.approx([0.0, 0.5, 0.55, 1 - 0.4 / 3, 1 - 0.4 / 8])
    low = Coverage(beta_reject=(0.9,), r=0.5, reject_tables=((0.7, 0.8),))
    assert ch.coverage(low, 0, 3, [3]).tolist() == [
        0.8
    ]  # the law below the table's end never lowers c


def _at(alpha=(0.8,), cov=None, **kw) -> ch.ChanceAt:
    cov = cov or Coverage(beta_reject=(0.3,), r=1.0, beta_bonus=0.2)
    return ch.chance_at(Chance(alpha=alpha, coverage=cov, **kw), 0.0)


def test_fast_proposer_coverage():
    at = _at()
    c = ch.coverage_for(at, "fast", 1, 3, [0, 1, 2, 3])
    base = ch.coverage(at.coverage, 1, 3, [0, 1, 2])
    assert c.tolist() == pytest.approx([0.0, *(0.8 + 0.2 * base)])
    assert (
        ch.coverage_for(at, "fast", 3, 3, [2]).tolist()
        == ch.coverage(at.coverage, 3, 3, [2]).tolist()
    )


def test_hit_prob_and_ranks_consistent():
    at = _at(alpha=(0.75, 0.6))
    k, fan = 3, (3, 2, 0, 4)
    pmf = ch.accept_pmf(at.alpha, k)
    expect = sum(pmf[j] * ch.coverage(at.coverage, j, k, fan[j])[()] for j in range(k + 1))
    assert ch.hit_prob(at, "hit", k, fan) == pytest.approx(expect)
    table = ch.rank_cdf_table(at, "hit", k, 64)
    rng = np.random.default_rng(1)
    j = rng.integers(0, k + 1, 20000)
    v = rng.random(20000)
    ranks = ch.sample_rank(table, j, v)
    thr = ch.hit_thresholds(at, "hit", k, fan)
    hit_by_rank = (ranks >= 1) & (ranks <= np.array(fan)[j])
    assert (hit_by_rank == (v < thr[j])).all()  # rank <= F exactly when v < c_j(F)
    sel = j == 0
    for f in (1, 2, 5):  # ranks follow c_0(F)
        assert np.mean(ranks[sel] <= f) == pytest.approx(
            ch.coverage(at.coverage, 0, k, f)[()], abs=0.02
        )


def test_temperature_model_and_rescale():
    base = Chance(
        alpha=(0.8,),
        alpha_fast=(0.4,),
        coverage=Coverage(beta_reject=(0.2,), beta_bonus=0.1),
        temperature_model=TemperatureModel(0.1, 1.0, 0.25, 1.0),
    )
    greedy = ch.chance_at(base, 0.0, 0.3)
    assert greedy.alpha == (0.8,) and greedy.coverage.beta_reject == (
        0.2,
    )  # C has no effect at T=0
    hot = ch.chance_at(base, 1.0, 1.0)
    assert hot.alpha == pytest.approx((0.72,)) and hot.alpha_fast == pytest.approx((0.36,))
    assert hot.coverage.beta_reject == pytest.approx(
        (0.4,)
    ) and hot.coverage.beta_bonus == pytest.approx(0.2)
    resc = ch.chance_at(base, 1.0, 0.5)
    assert (
        resc.alpha[0] < hot.alpha[0] and resc.coverage.beta_reject[0] < hot.coverage.beta_reject[0]
    )
    assert resc.coverage.beta_bonus == hot.coverage.beta_bonus and resc.alpha_fast == hot.alpha_fast
    assert resc.alpha == pytest.approx(
        (0.72 * (1 - 0.25 * 0.5),)
    ) and resc.coverage.beta_reject == pytest.approx((0.2,))


def test_measured_points_override_and_anchor():
    pt = ChancePoint(
        temperature=0.7,
        rescale=0.5,
        alpha=(0.6, 0.5),
        coverage=Coverage(beta_reject=(0.25,), beta_bonus=0.3),
    )
    chance = Chance(alpha=(0.8,), alpha_after_miss=(0.7,), points=(pt,))
    exact = ch.chance_at(chance, 0.7, 0.5)
    assert exact.source == "point" and exact.alpha == (0.6, 0.5) and exact.alpha_jit == (0.6, 0.5)
    assert exact.coverage.beta_reject == (0.25,)
    fast_factor = ch.model_factors(chance.temperature_model, 0.7, 0.5)["alpha_fast"]
    assert exact.alpha_fast == pytest.approx(
        (chance.alpha_fast[0] * fast_factor,)
    )  # gap: base moved to the point
    near = ch.chance_at(chance, 0.8, 0.5)
    assert near.source == "point+model"
    tm = chance.temperature_model
    ratio = ch.model_factors(tm, 0.8, 0.5)["alpha"] / ch.model_factors(tm, 0.7, 0.5)["alpha"]
    assert near.alpha == pytest.approx((0.6 * ratio, 0.5 * ratio))
    assert ch.chance_at(Chance(), 0.0).source == "model"


@pytest.mark.parametrize("t, c", [(-0.1, 1.0), (0.5, 0.0), (0.5, 1.2)])
def test_chance_at_rejects(t, c):
    with pytest.raises(SchemaError, match="chance_at"):
        ch.chance_at(Chance(), t, c)


def test_inverse_cdf_sampling_matches_pmf():
    k, alpha = 5, (0.85, 0.7)
    u = np.random.default_rng(7).random(200000)
    a = np.searchsorted(ch.accept_cdf(alpha, k), u, side="right")
    assert np.bincount(a, minlength=k + 1) / len(u) == pytest.approx(
        ch.accept_pmf(alpha, k), abs=0.005
    )


def test_fast_acceptance_ignores_the_rescale():
    """A (T, C < 1) point without fast-speculator data takes the fast acceptance measured at the
    same T (C = 1), not the greedy base moved by the temperature model: n-gram proposals do not
    depend on C. (A closed loop once chose fast misses at T=1, C=0.72 on the greedy n-gram
    acceptance: predicted 173 tokens/s, measured 64.)"""
    cov = Coverage(beta_reject=(0.25,), beta_bonus=0.3)
    hot = ChancePoint(
        temperature=1.0, rescale=1.0, alpha=(0.7,), alpha_fast=(0.05, 0.3), coverage=cov
    )
    hot_c = ChancePoint(temperature=1.0, rescale=0.5, alpha=(0.6,), coverage=cov)
    chance = Chance(alpha=(0.8,), alpha_fast=(0.9, 0.95), points=(hot, hot_c))
    for c in (0.5, 0.72, 1.0):
        assert ch.chance_at(chance, 1.0, c).alpha_fast[:2] == (0.05, 0.3)
    # the draft's acceptance still comes from the nearest point (C = 0.5 here)
    assert ch.chance_at(chance, 1.0, 0.5).alpha[0] == 0.6
    # greedy, with no greedy point: the fast acceptance of the T=1 point moved by the model in T
    greedy = ch.chance_at(chance, 0.0, 1.0)
    assert greedy.alpha_fast[0] >= 0.05
