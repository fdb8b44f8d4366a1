"""Calibration round trips: simulate with a known profile, trace, calibrate, recover the parameters.

The simulator writes traces in the executor's schema (accepted lengths, cache hits, bonus ranks
drawn from the known coverage), so calibration must find the profile's acceptance per position
and proposer, its coverage power laws and its host work per step, within sampling tolerance.
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

import numpy as np
import pytest

from ssdsim import (
    Chance,
    ChancePoint,
    Coverage,
    ForwardLatency,
    LinkLatency,
    Policy,
    Profile,
    Workload,
)
from ssdsim import latency as lat
from ssdsim.calibrate import calibrate
from ssdsim.calibrate.latency_fit import fit_forward
from ssdsim.calibrate.report import format_report, hit_rate_checks
from ssdsim.calibrate.speed import scale_times
from ssdsim.chance import chance_at
from ssdsim.profile import LatencyGrid, LatencyMeasurements
from ssdsim.simulator import simulate
from ssdsim.trace import TraceWriter, read_trace

TRUE_COV = Coverage(beta_reject=(0.45, 0.35, 0.3), r=0.9, beta_bonus=0.25, r_bonus=1.2)
TRUE = Chance(
    alpha=(0.85, 0.75, 0.7, 0.65),
    alpha_after_miss=(0.8, 0.7, 0.6, 0.6),
    alpha_fast=(0.4, 0.3),
    coverage=TRUE_COV,
)
GREEDY = ChancePoint(  # the greedy values as a measured point (points override the base)
    temperature=0.0,
    rescale=1.0,
    alpha=TRUE.alpha,
    alpha_after_miss=TRUE.alpha_after_miss,
    alpha_fast=TRUE.alpha_fast,
    coverage=TRUE_COV,
)
HOT = ChancePoint(  # sampling with rescale: its own acceptance and coverage
    temperature=1.0,
    rescale=0.5,
    alpha=(0.6, 0.5),
    coverage=Coverage(beta_reject=(0.6,), r=0.6, beta_bonus=0.4, r_bonus=0.8),
)
GEOMETRIC = Policy(mode="ssd", k=4, fan_out=(4, 3, 2, 2, 1), fan_out_miss=(6, 2, 2, 1, 1))


@pytest.fixture(scope="module")
def profile():
    """Context-dependent latencies, so that the host-work fit must rebuild each step's context."""
    return Profile(
        name="known",
        target=ForwardLatency(fixed_s=0.02, token_s=1e-4, attn_s=1e-7, kv_s=2e-6),
        draft=ForwardLatency(fixed_s=0.002, token_s=2e-5, attn_s=1e-8),
        link=LinkLatency(fixed_s=1e-4, per_byte_s=1e-9),
        chance=dataclasses.replace(TRUE, points=(GREEDY, HOT)),
        fast_s=3e-4,
        step_overhead_s=4e-4,
        seq_overhead_s=5e-5,
    )


@pytest.fixture(scope="module")
def traces(profile, tmp_path_factory):
    d = tmp_path_factory.mktemp("traces")
    wl = Workload(batch_size=4, output_len_tokens=256, prompt_len_tokens=100, num_prompts=48)
    runs = {
        "ssd_jit": (GEOMETRIC, wl),
        "ssd_fast": (
            dataclasses.replace(GEOMETRIC, fallback="fast"),
            dataclasses.replace(wl, seed=1),
        ),
        "sd": (Policy(mode="sd", k=4), dataclasses.replace(wl, seed=2)),
        "sd_b1": (Policy(mode="sd", k=2), dataclasses.replace(wl, batch_size=1, num_prompts=4)),
        "ar": (Policy(mode="ar"), dataclasses.replace(wl, num_prompts=8)),
        "hot": (
            dataclasses.replace(GEOMETRIC, rescale=0.5),
            dataclasses.replace(wl, temperature=1.0, seed=3),
        ),
    }
    out = {}
    for name, (pol, w) in runs.items():
        out[name] = d / f"{name}.jsonl"
        simulate(profile, pol, w, trace_path=out[name])
    return out


@pytest.fixture(scope="module")
def cal(traces, profile):
    return calibrate([str(p) for p in traces.values()], base=profile)


def _point(cal, t, c):
    (p,) = [f.point for f in cal.points if f.point.temperature == t and f.point.rescale == c]
    return p


def test_acceptance_per_position_and_proposer(cal):
    greedy = _point(cal, 0.0, 1.0)
    assert greedy.alpha == pytest.approx(TRUE.alpha, abs=0.03)
    assert greedy.alpha_after_miss == pytest.approx(TRUE.alpha_after_miss, abs=0.05)
    assert greedy.alpha_fast[:2] == pytest.approx(TRUE.alpha_fast, abs=0.04)
    hot = _point(cal, 1.0, 0.5)
    assert hot.alpha[:2] == pytest.approx(HOT.alpha, abs=0.04)
    assert cal.profile.chance.alpha == greedy.alpha  # the greedy point is the base


def test_coverage_power_laws(cal):
    fit = next(f for f in cal.points if f.point.temperature == 0.0)
    assert fit.reject_law.r == pytest.approx(TRUE_COV.r, abs=0.1)
    assert fit.reject_law.betas[:3] == pytest.approx(TRUE_COV.beta_reject, rel=0.2)
    assert fit.bonus_law.betas[0] == pytest.approx(TRUE_COV.beta_bonus, rel=0.2)
    assert fit.bonus_law.r == pytest.approx(TRUE_COV.r_bonus, abs=0.2)
    assert fit.reject_law.max_residual < 0.06
    hot = next(f for f in cal.points if f.point.temperature == 1.0)
    assert hot.reject_law.r == pytest.approx(HOT.coverage.r, abs=0.15)


def test_calibrated_profile_predicts_the_hit_rates(cal):
    checks = hit_rate_checks(cal)
    assert len(checks) == 3  # the SSD traces
    for _, measured, predicted in checks:
        assert predicted == pytest.approx(measured, abs=0.03)


def test_calibrated_tables_reproduce_true_coverage(cal):
    at = chance_at(cal.profile.chance, 0.0)
    truth = chance_at(TRUE, 0.0)
    from ssdsim.chance import coverage

    for j in range(3):
        got = coverage(at.coverage, j, 4, [1, 2, 4, 8])
        want = coverage(truth.coverage, j, 4, [1, 2, 4, 8])
        assert got == pytest.approx(want, abs=0.05)


def test_host_work_per_step_recovered(cal):
    verify = cal.overheads["sd"]
    assert verify.fixed_s == pytest.approx(4e-4, rel=1e-6)
    assert verify.per_seq_s == pytest.approx(5e-5, rel=1e-6)
    assert cal.profile.step_overhead_s == pytest.approx(4e-4, rel=1e-6)
    # AR ran at B=4 only: its fixed + per-sequence total there is what can be recovered.
    assert cal.overheads["ar"].at(4) == pytest.approx(4e-4 + 4 * 5e-5, rel=1e-6)
    assert cal.profile.mode_overheads["sd"] == pytest.approx((4e-4, 5e-5))
    assert "hit rate" in format_report(cal)


def test_provenance_names_the_traces(cal, traces):
    prov = cal.profile.provenance
    assert {t["path"] for t in prov["traces"]} == {str(p) for p in traces.values()}
    assert prov["tool"] == "python -m ssdsim.calibrate"
    assert prov["speed_probe_s"] is None  # simulated traces carry no speed probe


def test_speed_reference_is_the_median_probe_and_needs_every_trace():
    from types import SimpleNamespace

    from ssdsim.calibrate.speed import speed_reference

    def trace(probe):
        devices = {"speed_probe": {"target_forward_s": probe}} if probe else {}
        return SimpleNamespace(header=SimpleNamespace(devices=devices))

    assert speed_reference([trace(4e-3), trace(5e-3), trace(9e-3)]) == pytest.approx(5e-3)
    assert speed_reference([trace(4e-3), trace(None)]) is None
    assert speed_reference([]) is None


def _grid_of(form: ForwardLatency, noise: float, seed: int = 0) -> LatencyGrid:
    axes = ((1, 2, 4, 8), (1, 3, 5, 9), (64, 256, 512))
    b, n, c = np.meshgrid(*axes, indexing="ij")
    rng = np.random.default_rng(seed)
    sec = lat.formula_s(form, b, n, c) * (1 + noise * rng.uniform(-1, 1, b.shape))
    return LatencyGrid(*axes, seconds=sec.tolist())


def test_forward_formula_recovered_from_a_grid():
    true = ForwardLatency(fixed_s=5e-3, token_s=4e-4, attn_s=2e-8, kv_s=3e-7)
    fit = fit_forward(_grid_of(true, noise=0.02))
    got = fit.latency
    assert got.fixed_s == pytest.approx(true.fixed_s, rel=0.1)
    assert got.token_s == pytest.approx(true.token_s, rel=0.1)
    assert fit.max_rel_err < 0.05
    g = got.grid  # the measurements themselves rule inside the grid
    assert lat.forward_s(got, 4, 5, 256) == pytest.approx(g.seconds[2][2][1])
    exact = fit_forward(_grid_of(true, noise=0.0))
    assert exact.max_rel_err < 1e-6


def test_latency_file_feeds_the_profile(traces, profile):
    true = ForwardLatency(fixed_s=5e-3, token_s=4e-4, attn_s=2e-8, kv_s=3e-7)
    meas = LatencyMeasurements(
        target=ForwardLatency(grid=_grid_of(true, 0.0)),
        draft=ForwardLatency(grid=_grid_of(dataclasses.replace(true, fixed_s=1e-3), 0.0)),
        link=profile.link,
        provenance={"tool": "test"},
    )
    cal = calibrate([str(traces["ssd_jit"])], meas, profile)
    assert cal.profile.target.fixed_s == pytest.approx(5e-3, rel=1e-4)
    assert cal.profile.draft.grid is not None and cal.profile.provenance["latency"] == {
        "tool": "test"
    }


def _probed(src, dst, probe_s, slow=1.0):
    """A copy of trace ``src`` at ``dst``, its times ``slow`` times as long, with a speed probe."""
    t = read_trace(src)
    t = scale_times(t, slow)
    header = dataclasses.replace(
        t.header, devices={**t.header.devices, "speed_probe": {"target_forward_s": probe_s}}
    )
    with TraceWriter(dst, header) as w:
        for s in t.steps:
            w.step(s)
        w.summary(t.summary)
    return str(dst)


def test_scale_times_multiplies_durations_and_divides_rates(traces):
    t = read_trace(traces["ssd_jit"])
    slow = scale_times(t, 2.0)
    a, b = t.steps[3], slow.steps[3]
    assert b.t_end_s - b.t_start_s == pytest.approx(2 * (a.t_end_s - a.t_start_s))
    assert (b.verify_s, b.draft_s, b.wait_s) == pytest.approx(
        (2 * a.verify_s, 2 * a.draft_s, 2 * a.wait_s)
    )
    assert b.seqs == a.seqs and b.step == a.step
    assert slow.summary.tokens_per_s == pytest.approx(t.summary.tokens_per_s / 2)
    assert slow.summary.decode_s == pytest.approx(2 * t.summary.decode_s)
    assert slow.summary.tokens_per_step == t.summary.tokens_per_step


def test_traces_run_on_a_slow_machine_are_brought_back_to_the_reference(traces, profile, tmp_path):
    """Two of six traces ran 30% slower, and their probes saw it: calibrated with the probes,
    the profile predicts what the traces at one speed give; fitted as measured, it does not."""
    p0 = 0.004
    slowed = {"sd", "ar"}
    even = [_probed(p, tmp_path / f"even_{n}.jsonl", p0) for n, p in traces.items()]
    mixed = [
        _probed(
            p,
            tmp_path / f"mixed_{n}.jsonl",
            p0 * 1.3 if n in slowed else p0,
            1.3 if n in slowed else 1.0,
        )
        for n, p in traces.items()
    ]
    ref = calibrate(even, base=profile).profile
    fixed = calibrate(mixed, base=profile).profile
    raw = calibrate(mixed, base=profile, normalize_speed=False).profile
    assert fixed.provenance["speed_probe_s"] == pytest.approx(p0)
    assert fixed.provenance["settings"]["normalize_speed"] is True
    wl = Workload(batch_size=4, output_len_tokens=64, prompt_len_tokens=100, num_prompts=8)
    for pol in (Policy(mode="ar"), Policy(mode="sd", k=4)):
        want = simulate(ref, pol, wl).tokens_per_s
        assert simulate(fixed, pol, wl).tokens_per_s == pytest.approx(want, rel=0.01)
        assert simulate(raw, pol, wl).tokens_per_s < 0.95 * want


def test_probe_weight_is_how_far_the_runs_follow_their_probes(traces, profile, tmp_path):
    """Runs of two settings whose times move as their probe to the power 0.3: the pooled slope
    finds 0.3, scaling by it brings each setting's runs to one time, and the calibration records
    it; one probed run per setting says nothing (None)."""
    from ssdsim.calibrate.speed import at_reference_speed, probe_weight

    copies = {}
    for name in ("sd", "ar"):
        for i, m in enumerate((0.9, 1.0, 1.1, 1.25)):
            p = _probed(traces[name], tmp_path / f"{name}{i}.jsonl", 4e-3 * m, m**0.3)
            copies[p] = read_trace(p)
    assert probe_weight(copies.values()) == pytest.approx(0.3, abs=1e-6)
    one = {p: t for p, t in copies.items() if p.endswith("0.jsonl")}
    assert probe_weight(one.values()) is None
    out, ref = at_reference_speed(copies, 0.3)
    assert ref == pytest.approx(4e-3 * 1.05)
    for name in ("sd", "ar"):
        means = [
            statistics.fmean(s.verify_s for s in t.steps)
            for p, t in out.items()
            if Path(p).name.startswith(name)
        ]
        assert max(means) / min(means) == pytest.approx(1.0, abs=1e-9)
    cal = calibrate(list(copies), base=profile)
    assert cal.profile.provenance["speed_probe_weight"] == pytest.approx(0.3, abs=1e-6)
    assert "to the power 0.30, fitted" in format_report(cal)
