"""SD's drafting per step = scale_B x k modelled chain forwards + a fixed part, fitted apart.

Steps built by hand from a known truth (per-B scales and 1.5 ms a step, as the first draft
forward after the target's reloads the draft's weights): with two k at a batch size the fit
recovers both; with one k per batch size the fixed part cannot be told from the scale and the
fit falls back to per-B ratios with none. The simulator charges the fixed part to SD only.
"""

from __future__ import annotations

import dataclasses

import pytest

from ssdsim import Policy, Workload, uniform_ssd
from ssdsim import latency as lat
from ssdsim.calibrate.trace_costs import fit_draft_chain
from ssdsim.simulator import simulate

FIXED_S = 1.5e-3
SCALES = {1: 0.8, 4: 1.3, 8: 1.1}


def _steps(prof, points) -> list[dict]:
    out = []
    for batch, k in points:
        for context in (80.0, 140.0):
            chain = lat.draft_chain_s(prof, batch, k, context)
            draft = SCALES[batch] * chain + FIXED_S
            out.append(
                {
                    "mode": "sd",
                    "batch": batch,
                    "k": k,
                    "context": context,
                    "temperature": 0.0,
                    "draft_s": draft,
                    "verify_s": 0.01,
                    "step_s": draft + 0.01,
                }
            )
    return out


def test_fixed_part_and_scales_recovered(make_toy):
    prof = make_toy()
    steps = _steps(prof, [(1, 4), (1, 8), (4, 4), (4, 8), (8, 2)])
    scales, fixed = fit_draft_chain(prof, steps)
    assert fixed == pytest.approx(FIXED_S, rel=1e-6)
    assert scales == pytest.approx({(b, 1): v for b, v in SCALES.items()}, rel=1e-6)


def test_one_k_per_batch_size_keeps_the_ratios(make_toy):
    prof = make_toy()
    steps = _steps(prof, [(1, 4), (4, 8)])
    scales, fixed = fit_draft_chain(prof, steps)
    assert fixed == 0.0
    for (b, _), v in scales.items():
        (k,) = {s["k"] for s in steps if s["batch"] == b}
        chain = [lat.draft_chain_s(prof, b, k, c) for c in (80.0, 140.0)]
        assert v == pytest.approx((SCALES[b] * sum(chain) + 2 * FIXED_S) / sum(chain), rel=1e-6)


def test_simulator_charges_the_fixed_part_to_sd_steps_only(make_toy):
    base = make_toy()
    prof = dataclasses.replace(base, sd_draft_fixed_s=FIXED_S)
    wl = Workload(batch_size=1, output_len_tokens=40, prompt_len_tokens=50, num_prompts=1)
    fast, slow = (
        simulate(base, Policy(mode="sd", k=3), wl),
        simulate(prof, Policy(mode="sd", k=3), wl),
    )
    assert slow.steps == fast.steps
    assert slow.decode_s - fast.decode_s == pytest.approx(FIXED_S * fast.steps, rel=1e-6)
    for policy in (Policy(mode="ar"), uniform_ssd(3, 2, "jit")):
        assert simulate(prof, policy, wl) == simulate(base, policy, wl)
