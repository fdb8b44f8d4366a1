"""Run tables fitted jointly with how sequences differ (``ChancePoint.run_spread``)."""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np
import pytest

from ssdsim import ChancePoint, Coverage, Policy, Workload
from ssdsim.calibrate import calibrate
from ssdsim.calibrate.chance_fit import fit_run_spread
from ssdsim.calibrate.tally import Tally, tally_traces
from ssdsim.chance import odds_alpha
from ssdsim.simulator import simulate
from ssdsim.trace import read_trace

WL = Workload(batch_size=1, output_len_tokens=240, prompt_len_tokens=50, num_prompts=60)


def _truth(make_toy, spread: tuple[float, ...]):
    toy = make_toy()
    point = ChancePoint(
        temperature=0.0,
        rescale=1.0,
        alpha=(0.7,),
        coverage=Coverage(beta_reject=(0.3,), beta_bonus=0.3),
        run_alpha_sd=(0.55, 0.85),
        run_spread=spread,
    )
    return dataclasses.replace(toy, chance=dataclasses.replace(toy.chance, points=(point,)))


def _per_seq_tokens_per_step(path) -> list[float]:
    tokens: dict[int, int] = {}
    steps: dict[int, int] = {}
    for step in read_trace(path).steps:
        for o in step.seqs:
            tokens[o.seq] = tokens.get(o.seq, 0) + o.emitted_tokens
            steps[o.seq] = steps.get(o.seq, 0) + 1
    return [tokens[q] / steps[q] for q in tokens]


def _cv(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.fmean(values)


def test_odds_alpha_moves_the_odds_of_rejection():
    assert odds_alpha((0.8, 0.5), 1.0) == pytest.approx((0.8, 0.5))
    # odds of rejection 0.25 and 1.0, times 4: 1.0 and 4.0
    assert odds_alpha((0.8, 0.5), 4.0) == pytest.approx((0.5, 0.2))
    assert odds_alpha((1.0, 0.0), 3.0) == pytest.approx((1.0, 0.0))


def test_the_spread_field_is_checked():
    with pytest.raises(ValueError, match="run_spread"):
        ChancePoint(temperature=0.0, rescale=1.0, alpha=(0.8,), run_spread=(1.0, -0.5))


def test_per_sequence_counts_add_up_to_the_tables(make_toy, tmp_path):
    path = tmp_path / "sd.jsonl"
    simulate(_truth(make_toy, (0.3, 1.0, 3.0)), Policy(mode="sd", k=3), WL, trace_path=path)
    (tally,) = tally_traces({str(path): read_trace(path)}).values()
    assert len(tally.per_seq_run) == WL.num_prompts
    for at in range(5):
        key = ("sd", 0) if at == 0 else ("run", at)
        cells = [c[key] for c in tally.per_seq_run.values() if key in c]
        assert sum(n for n, _ in cells) == tally.run_reached["sd"][at]
        assert sum(p for _, p in cells) == tally.run_passed["sd"][at]


def _synthetic(spread_sd: float, seqs: int = 150, seed: int = 0) -> tuple[Tally, np.ndarray]:
    """A tally whose sequences follow two cells (run 0: 0.6, run 1+: 0.85) with their odds of
    rejection moved by log-normal multipliers (sd ``spread_sd``)."""
    rng = np.random.default_rng(seed)
    log_r = rng.normal(0.0, spread_sd, seqs)
    t = Tally()
    for s, lr in enumerate(log_r):
        for kind, at, rate in (("sd", 0, 0.6), ("run", 1, 0.85)):
            a = odds_alpha((rate,), float(np.exp(lr)))[0]
            n = 120
            t.per_seq_run[("x", s)] = t.per_seq_run.get(("x", s), {})
            t.per_seq_run[("x", s)][(kind, at)] = [n, int(rng.binomial(n, a))]
    return t, log_r


def test_the_joint_fit_recovers_rates_and_spread():
    t, log_r = _synthetic(0.8)
    fit = fit_run_spread(t, {"sd": (0.5, 0.5)}, ())
    assert fit.tables["sd"] == pytest.approx((0.6, 0.85), abs=0.03)
    got = np.log(fit.spread)
    assert len(got) == len(log_r)
    assert np.std(got) == pytest.approx(0.8, rel=0.15)
    # pooled rates (what run tables alone fit) sit away from the typical sequence's
    pooled = sum(c[("run", 1)][1] for c in t.per_seq_run.values()) / (120 * len(log_r))
    assert abs(pooled - 0.85) > abs(fit.tables["sd"][1] - 0.85)


def test_alike_sequences_get_no_spread_from_noise_alone():
    t, _ = _synthetic(0.0)
    fit = fit_run_spread(t, {"sd": (0.5, 0.5)}, ())
    assert not fit.spread or np.std(np.log(fit.spread)) < 0.05
    assert fit.tables["sd"] == pytest.approx((0.6, 0.85), abs=0.02)


def test_calibrated_spread_predicts_how_sequences_differ_at_another_k(make_toy, tmp_path):
    """SD at k = 2 from sequences that differ (odds of rejection x0.25 to x4) calibrates a
    profile whose SD at k = 6 spreads its sequences' tokens per step as the truth does, and
    whose tokens/s per sequence (the mean of the sequences' rates) matches; the run tables
    alone (no spread) keep the pooled tokens per step but narrow the sequences' spread."""
    spread = tuple(float(x) for x in np.exp(np.linspace(np.log(0.25), np.log(4.0), 12)))
    truth = _truth(make_toy, spread)
    p = tmp_path / "sd2.jsonl"
    simulate(truth, Policy(mode="sd", k=2), WL, trace_path=p)
    cal = calibrate([str(p)], base=make_toy())
    (fit,) = cal.points
    assert len(fit.point.run_spread) == WL.num_prompts
    assert np.std(np.log(fit.point.run_spread)) == pytest.approx(np.std(np.log(spread)), rel=0.25)

    k6 = Policy(mode="sd", k=6)
    want_path, got_path, flat_path = (tmp_path / f"{n}.jsonl" for n in ("want", "got", "flat"))
    want = simulate(truth, k6, WL, trace_path=want_path)
    got = simulate(cal.profile, k6, WL, trace_path=got_path)
    flat_point = dataclasses.replace(fit.point, run_spread=())
    flat_profile = dataclasses.replace(
        cal.profile, chance=dataclasses.replace(cal.profile.chance, points=(flat_point,))
    )
    simulate(flat_profile, k6, WL, trace_path=flat_path)
    cv_want, cv_got, cv_flat = (
        _cv(_per_seq_tokens_per_step(x)) for x in (want_path, got_path, flat_path)
    )
    assert cv_got == pytest.approx(cv_want, rel=0.25)
    assert cv_flat < 0.7 * cv_want
    assert got.tokens_per_s == pytest.approx(want.tokens_per_s, rel=0.06)
