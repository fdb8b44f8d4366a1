"""Sampling's cost in AR and SD steps (T > 0) is fitted apart from the greedy forward.

Steps built by hand from a known truth: a target forward (scale 1), host work per step, and at
T > 0 a cost per scored row (B x tokens the target scores). Pooled over T, the forward's scale
would absorb half of the sampling and over-predict greedy steps; the fit must recover the
forward exactly from the greedy steps and the per-row cost from the others. The simulator then
charges it at T > 0 only.
"""

from __future__ import annotations

import dataclasses

import pytest

from ssdsim import Policy, Workload
from ssdsim import latency as lat
from ssdsim.calibrate.latency_fit import OverheadFit
from ssdsim.calibrate.trace_costs import fit_sample_row_s, fit_target_scales
from ssdsim.simulator import simulate

ROW_S = 150e-6
HOST = {"ar": OverheadFit(1e-4, 2e-5, {}, 0), "sd": OverheadFit(3e-4, 5e-5, {}, 0)}


def _steps(prof) -> list[dict]:
    out = []
    for mode, batch, k in (("ar", 1, 0), ("ar", 4, 0), ("sd", 1, 4), ("sd", 4, 4), ("sd", 4, 8)):
        n = k + 1
        for temperature in (0.0, 1.0):
            for context in (80.0, 120.0, 160.0):
                fwd = lat.forward_s(prof.target, batch, n, context + n)
                sampling = ROW_S * batch * n if temperature else 0.0
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


def test_greedy_scale_and_per_row_sampling_cost_recovered(make_toy):
    prof = make_toy()
    steps = _steps(prof)
    scales = fit_target_scales(prof, steps)
    assert scales and all(v == pytest.approx(1.0, rel=1e-9) for v in scales.values())
    assert fit_sample_row_s(prof, steps, HOST) == pytest.approx(ROW_S, rel=1e-9)
    greedy = [s for s in steps if not s["temperature"]]
    assert fit_sample_row_s(prof, greedy, HOST) is None
    # a cell with steps at T > 0 only keeps them (its scale then holds the sampling)
    hot = [s for s in steps if s["temperature"] and s["batch"] == 4 and s["k"] == 8]
    (scale,) = fit_target_scales(prof, hot).values()
    assert scale > 1.0


def test_simulator_charges_sampling_rows_at_t_above_zero_only(make_toy):
    base = make_toy()
    prof = dataclasses.replace(base, verify_sample_row_s=ROW_S)
    wl = Workload(batch_size=1, output_len_tokens=40, prompt_len_tokens=50, num_prompts=1)
    for policy in (Policy(mode="ar"), Policy(mode="sd", k=3)):
        assert simulate(prof, policy, wl) == simulate(base, policy, wl)  # greedy: unchanged
        hot = dataclasses.replace(wl, temperature=1.0)
        fast, slow = simulate(base, policy, hot), simulate(prof, policy, hot)
        rows = policy.k + 1 if policy.mode == "sd" else 1
        assert slow.steps == fast.steps
        assert slow.decode_s - fast.decode_s == pytest.approx(ROW_S * rows * fast.steps, rel=1e-6)
