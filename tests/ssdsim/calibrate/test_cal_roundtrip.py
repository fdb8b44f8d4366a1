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
    """Runs of two settings whose times move as their probe to the power 0.3: each group's slope
    and the pooled one find 0.3, scaling by it brings each setting's runs to one time, and the
    calibration records it; one probed run per setting says nothing (None)."""
    from ssdsim.calibrate.speed import at_reference_speed, probe_weights

    copies = {}
    for name in ("sd", "ar"):
        for i, m in enumerate((0.9, 1.0, 1.1, 1.25)):
            p = _probed(traces[name], tmp_path / f"{name}{i}.jsonl", 4e-3 * m, m**0.3)
            copies[p] = read_trace(p)
    w = probe_weights(copies.values())
    assert set(w.by_group) == {"sd/4", "ar/4", "*"}
    for wt, wd in w.by_group.values():
        assert (wt, wd) == pytest.approx((0.3, 0.0), abs=1e-6)
    one = {p: t for p, t in copies.items() if p.endswith("0.jsonl")}
    assert probe_weights(one.values()) is None
    out, ref = at_reference_speed(copies, w)
    assert ref == pytest.approx(4e-3 * 1.05)
    for name in ("sd", "ar"):
        means = [
            statistics.fmean(s.verify_s for s in t.steps)
            for p, t in out.items()
            if Path(p).name.startswith(name)
        ]
        assert max(means) / min(means) == pytest.approx(1.0, abs=1e-9)
    cal = calibrate(list(copies), base=profile, probe_weights_from="fitted")
    prov = cal.profile.provenance
    assert prov["speed_probe_weight"] == pytest.approx(0.3, abs=1e-6)
    assert prov["speed_probe_weights"]["ar/4"] == pytest.approx([0.3, 0.0], abs=1e-6)
    assert "to the powers fitted: ar/4 0.30, sd/4 0.30" in format_report(cal)
    # traces without marks: by default (auto) the fitted weights
    assert (
        calibrate(list(copies), base=profile).profile.provenance["speed_probe_weights_from"]
        == "fitted"
    )
    # asked for, the measured weights are used (weight 1 here) and the fitted ones recorded
    default = calibrate(list(copies), base=profile, probe_weights_from="measured")
    prov = default.profile.provenance
    assert prov["speed_probe_weights_from"] == "measured"
    assert prov["speed_probe_weights"]["ar/1"] == [1.0, 0.0]
    assert prov["speed_probe_weights_fitted"]["sd/4"] == pytest.approx([0.3, 0.0], abs=1e-6)
    assert "fitted on these traces: ar/4 0.30" in format_report(default)
    with pytest.raises(ValueError, match="probe_weights_from"):
        calibrate(list(copies), base=profile, probe_weights_from="guessed")


def _marked(src, dst, marks, factors, draft=None):
    """A copy of trace ``src`` at ``dst`` whose stretches between ``marks`` (decode seconds of
    the original) ran ``factors`` times as long, with probes between batches at the slowed
    clock: ``marks`` are (clock, target probe[, draft probe]) of the original."""
    from ssdsim.calibrate.speed import warp_times

    t = read_trace(src)
    t = warp_times(t, [m[0] for m in marks[:-1]], factors)
    clock, recs = 0.0, []
    for i, m in enumerate(marks):
        if i:
            clock += (m[0] - marks[i - 1][0]) * factors[i - 1]
        recs.append(
            {"clock_s": clock, "target_forward_s": m[1], "draft_forward_s": m[2] if draft else None}
        )
    probe = {
        "target_forward_s": statistics.fmean(r["target_forward_s"] for r in recs),
        "marks": recs,
    }
    if draft:
        probe["draft_forward_s"] = statistics.fmean(r["draft_forward_s"] for r in recs)
    header = dataclasses.replace(t.header, devices={**t.header.devices, "speed_probe": probe})
    with TraceWriter(dst, header) as w:
        for s in t.steps:
            w.step(s)
        w.summary(t.summary)
    return str(dst)


def test_a_run_whose_second_half_ran_slow_is_brought_back_stretch_by_stretch(traces, tmp_path):
    """The machine slowed 1.5x halfway through a run, and the marks between its batches saw it
    (the probe at the mid mark fast, the end's 2x: stretch means 1 and 1.5): brought to the
    reference, every step takes what it took in the original and the clock runs on; judged by
    the probes around the run alone (no marks), the first half would be sped up too."""
    from ssdsim.calibrate.speed import ProbeWeights, at_reference_speed, stretches, warp_times

    src = read_trace(traces["ar"])
    mid, end = src.steps[len(src.steps) // 2].t_start_s, src.steps[-1].t_end_s
    p0 = 4e-3
    marks = [(0.0, p0), (mid, p0), (end, 2 * p0)]
    slow = _marked(traces["ar"], tmp_path / "slow.jsonl", marks, [1.0, 1.5])
    even = _marked(
        traces["ar"], tmp_path / "even.jsonl", [(0.0, p0), (mid, p0), (end, p0)], [1.0, 1.0]
    )
    t = read_trace(slow)
    spans = stretches(t.header.devices["speed_probe"])
    assert [sp.target_s for sp in spans] == pytest.approx([p0, 1.5 * p0])
    out, ref = at_reference_speed(
        {"slow": t, "even": read_trace(even)}, ProbeWeights({"*": (1.0, 0.0)})
    )
    assert ref == pytest.approx(p0 * 7 / 6)  # the median of the runs' mean probes: 4/3 and 1
    back = warp_times(out["slow"], [0.0], [p0 / ref])  # undo the reference's own scale
    for a, b in zip(src.steps, back.steps, strict=True):
        assert b.t_end_s - b.t_start_s == pytest.approx(a.t_end_s - a.t_start_s, rel=1e-9)
        assert b.verify_s == pytest.approx(a.verify_s, rel=1e-9)
        assert b.t_start_s == pytest.approx(a.t_start_s, rel=1e-9, abs=1e-12)
    first = src.steps[1]
    whole = warp_times(t, [0.0], [1.0 / 1.25])  # the old way: one factor, the mean probe's
    assert whole.steps[1].verify_s < 0.85 * first.verify_s


def test_ssd_runs_weigh_the_draft_core_s_probe_too(traces, profile, tmp_path):
    """SSD runs whose stretches ran (target probe)^0.2 x (draft probe)^0.7 times as long, the
    two cores moving independently: the group's weights are found, and a validation pass is
    judged by them, stretch by stretch."""
    from types import SimpleNamespace

    from ssdsim.calibrate.speed import probe_weights
    from ssdsim.validate.compare import pass_speed

    src = read_trace(traces["ssd_jit"])
    mid, end = src.steps[len(src.steps) // 2].t_start_s, src.steps[-1].t_end_s
    rng = np.random.default_rng(3)
    copies = []
    for i in range(5):
        pt, pd = 4e-3 * rng.uniform(0.8, 1.3, 3), 4e-4 * rng.uniform(0.8, 1.3, 3)
        st_t, st_d = (pt[:-1] + pt[1:]) / 2, (pd[:-1] + pd[1:]) / 2
        factors = list((st_t / 4e-3) ** 0.2 * (st_d / 4e-4) ** 0.7)
        marks = [(c, a, b) for c, a, b in zip((0.0, mid, end), pt, pd, strict=True)]
        copies.append(
            read_trace(
                _marked(traces["ssd_jit"], tmp_path / f"s{i}.jsonl", marks, factors, draft=True)
            )
        )
    w = probe_weights(copies)
    b = int(src.header.workload["batch_size"])
    assert w.get("ssd", b) == pytest.approx((0.2, 0.7), abs=1e-6)
    paths = [str(tmp_path / f"s{i}.jsonl") for i in range(5)]
    prov = calibrate(paths, base=profile).profile.provenance  # probed between batches: measured
    assert prov["speed_probe_weights_from"] == "measured"
    assert prov["speed_probe_weights_fitted"][f"ssd/{b}"] == pytest.approx([0.2, 0.7], abs=1e-6)
    prov = {
        "speed_probe_s": 4e-3,
        "speed_probe_draft_s": 4e-4,
        "speed_probe_weights": {"ssd/1": [0.0, 1.0], "*": [1.0, 0.0]},
    }
    record = {
        "policy": {"mode": "ssd"},
        "batch_size": 1,
        "measured": {
            "speed_probe": {
                "target_forward_s": 4e-3,
                "marks": [
                    {"clock_s": 0.0, "target_forward_s": 4e-3, "draft_forward_s": 4e-4},
                    {"clock_s": 1.0, "target_forward_s": 4e-3, "draft_forward_s": 4e-4},
                    {"clock_s": 2.0, "target_forward_s": 4e-3, "draft_forward_s": 12e-4},
                ],
            }
        },
    }
    # stretches 1 s at speed 1 and 1 s at the draft 2x slow: 2 s against 1.5 s at the reference
    assert pass_speed(SimpleNamespace(provenance=prov), record) == pytest.approx(2 / 1.5)
    record["batch_size"] = 4  # another group: the mode's nearest batch size
    assert pass_speed(SimpleNamespace(provenance=prov), record) == pytest.approx(2 / 1.5)
    record["policy"]["mode"] = "ar"  # no AR weights: the pooled target weight, the target even
    assert pass_speed(SimpleNamespace(provenance=prov), record) == pytest.approx(1.0)
