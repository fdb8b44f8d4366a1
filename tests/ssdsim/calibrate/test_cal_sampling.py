"""Sampling's cost in AR and SD steps (T > 0) is fitted apart from the greedy forward.

Steps built by hand from a known truth: a target forward (scale 1), host work per step, and at
T > 0 a cost per step plus a cost per scored row (B x tokens the target scores). Pooled over T,
the forward's scale would absorb half of the sampling and over-predict greedy steps; the fit
must recover the forward exactly from the greedy steps and both sampling costs from the others
(a per-row cost alone, fitted on such steps, under-charges AR's one-row steps). The simulator
then charges them at T > 0 only.
"""

from __future__ import annotations

import dataclasses

import pytest

from ssdsim import Policy, Workload, uniform_ssd
from ssdsim import latency as lat
from ssdsim.calibrate.latency_fit import OverheadFit
from ssdsim.calibrate.trace_costs import fit_sample_costs, fit_target_scales
from ssdsim.simulator import simulate

ROW_S = 15e-6
STEP_S = 120e-6
HOST = {"ar": OverheadFit(1e-4, 2e-5, {}, 0), "sd": OverheadFit(3e-4, 5e-5, {}, 0)}


GROUPS = (("ar", 1, 0), ("ar", 4, 0), ("sd", 1, 4), ("sd", 4, 4), ("sd", 4, 8))


def _steps(prof, groups=GROUPS) -> list[dict]:
    out = []
    for mode, batch, k in groups:
        n = k + 1
        for temperature in (0.0, 1.0):
            for context in (80.0, 120.0, 160.0):
                fwd = lat.forward_s(prof.target, batch, n, context + n)
                sampling = STEP_S + ROW_S * batch * n if temperature else 0.0
                draft = 1e-3 * k
                verify = fwd + sampling  # the executor's verify_s holds the verification kernel
                out.append(
                    {
                        "mode": mode,
                        "batch": batch,
                        "k": k,
                        "context": context,
                        "temperature": temperature,
                        "verify_s": verify,
                        "draft_s": draft,
                        "step_s": draft + verify + HOST[mode].at(batch),
                    }
                )
    return out


def test_greedy_scale_and_sampling_costs_recovered(make_toy):
    prof = make_toy()
    steps = _steps(prof)
    scales = fit_target_scales(prof, steps)
    assert scales and all(v == pytest.approx(1.0, rel=1e-9) for v in scales.values())
    step_s, row_s = fit_sample_costs(prof, steps, HOST)
    assert step_s == pytest.approx(STEP_S, rel=1e-6)
    assert row_s == pytest.approx(ROW_S, rel=1e-6)
    greedy = [s for s in steps if not s["temperature"]]
    assert fit_sample_costs(prof, greedy, HOST) is None
    # one row count only: a per-row cost alone (it holds the step's share)
    one = _steps(prof, (("sd", 1, 4),))
    assert fit_sample_costs(prof, one, HOST) == pytest.approx((0.0, ROW_S + STEP_S / 5), rel=1e-6)
    # a cell with steps at T > 0 only keeps them (its scale then holds the sampling)
    hot = [s for s in steps if s["temperature"] and s["batch"] == 4 and s["k"] == 8]
    (scale,) = fit_target_scales(prof, hot).values()
    assert scale > 1.0


def test_simulator_charges_sampling_at_t_above_zero_only(make_toy):
    base = make_toy()
    prof = dataclasses.replace(base, verify_sample_row_s=ROW_S, verify_sample_step_s=STEP_S)
    wl = Workload(batch_size=1, output_len_tokens=40, prompt_len_tokens=50, num_prompts=1)
    for policy in (Policy(mode="ar"), Policy(mode="sd", k=3)):
        assert simulate(prof, policy, wl) == simulate(base, policy, wl)  # greedy: unchanged
        hot = dataclasses.replace(wl, temperature=1.0)
        fast, slow = simulate(base, policy, hot), simulate(prof, policy, hot)
        rows = policy.k + 1 if policy.mode == "sd" else 1
        assert slow.steps == fast.steps
        extra = (STEP_S + ROW_S * rows) * fast.steps
        assert slow.decode_s - fast.decode_s == pytest.approx(extra, rel=1e-6)


def test_ssd_verification_pays_the_sampling_costs_too(make_toy):
    """SSD verifies with SD's kernel: at T > 0 its steps pay the same sampling costs (slower,
    never faster), greedy steps nothing."""
    base = make_toy()
    prof = dataclasses.replace(base, verify_sample_row_s=ROW_S, verify_sample_step_s=STEP_S)
    wl = Workload(batch_size=2, output_len_tokens=40, prompt_len_tokens=50, num_prompts=2)
    for fallback in ("jit", "fast"):
        policy = uniform_ssd(3, 2, fallback)
        assert simulate(prof, policy, wl) == simulate(base, policy, wl)
        hot = dataclasses.replace(wl, temperature=1.0)
        assert simulate(prof, policy, hot).decode_s > simulate(base, policy, hot).decode_s
