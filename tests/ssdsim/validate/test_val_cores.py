"""SSD's two cores (``ssdsim.validate.cores``): every cost lies on one core or the link, and an
SSD pass is brought back to the calibration's speeds by each core's simulated weight."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest

from ssdsim.policy import Policy
from ssdsim.profile import LinkLatency, load_profile
from ssdsim.simulator import simulate
from ssdsim.validate import compare
from ssdsim.validate.cores import core_speed, elasticities, scaled_cores
from ssdsim.workload import Workload

WL = Workload(num_prompts=4, prompt_len_tokens=(64, 64), output_len_tokens=(48, 48), seed=3)
JIT = Policy(mode="ssd", k=4, fan_out=(2, 2, 1, 1, 0), fan_out_miss=(2, 2, 1, 1, 0))
FAST = dataclasses.replace(JIT, fallback="fast")


@pytest.fixture(scope="module")
def profile():
    # the calibrated preset (grids, host work by batch, tree scales), without the link
    return dataclasses.replace(
        load_profile("embedded-cpu-calibrated"), link=LinkLatency(), jit_fixed_s=3e-4
    )


@pytest.mark.parametrize("policy", [Policy(mode="ar"), Policy(mode="sd", k=4), JIT, FAST])
@pytest.mark.parametrize("batch,temperature", [(1, 0.0), (4, 1.0)])
def test_both_cores_slower_is_the_whole_run_slower(profile, policy, batch, temperature):
    """Without a link, both cores 1.3x as slow is every second 1.3x as long: a cost that
    scaled_cores forgot would break the ratio."""
    wl = dataclasses.replace(WL, batch_size=batch, temperature=temperature)
    base = simulate(profile, policy, wl, seed=1)
    slow = simulate(scaled_cores(profile, 1.3, 1.3), policy, wl, seed=1)
    assert slow.tokens_per_s == pytest.approx(base.tokens_per_s / 1.3, rel=1e-9)
    assert slow.tokens_per_step == pytest.approx(base.tokens_per_step, rel=1e-12)


def test_each_core_weighs_by_the_policy(profile):
    """AR is the target's work alone; SD's target and draft work run one after the other (their
    weights add up to one); SSD's jit at B=1 waits on its draft more than the fast fallback
    does, and its cores' weights stay within 0..1."""
    tps = simulate(profile, Policy(mode="ar"), WL, seed=WL.seed).tokens_per_s
    e = elasticities(profile, Policy(mode="ar"), WL, 1, tps)
    assert e == {"target": pytest.approx(1.0, abs=1e-6), "draft": pytest.approx(0.0, abs=1e-9)}
    tps = simulate(profile, Policy(mode="sd", k=4), WL, seed=WL.seed).tokens_per_s
    e = elasticities(profile, Policy(mode="sd", k=4), WL, 1, tps)
    assert e["target"] > 0.3 and e["draft"] > 0.1
    assert e["target"] + e["draft"] == pytest.approx(1.0, abs=0.02)
    weights = {}
    for policy in (JIT, FAST):
        tps = simulate(profile, policy, WL, seed=WL.seed).tokens_per_s
        weights[policy.fallback] = e = elasticities(profile, policy, WL, 1, tps)
        assert -0.05 < e["draft"] < 1.0 and 0.0 < e["target"] < 1.05
    assert weights["jit"]["draft"] > weights["fast"]["draft"]
    assert core_speed({"target": 0.5, "draft": 0.5}, 1.21, 1.0) == pytest.approx(1.1)


def _ssd_records(tps, target_probes, draft_probes):
    return [
        {
            "key": f"ssd_b1_t0_r{i}",
            "label": "ssd B=1 T=0",
            "policy": JIT.to_dict(),
            "batch_size": 1,
            "temperature": 0.0,
            "trace": "unused",
            "measured": {
                "tokens_per_s": v,
                "batch_tokens_per_s": v,
                "hit_rate": 0.5,
                "speed_probe": {"target_forward_s": t, "draft_forward_s": d},
            },
            "load_avg_1m": [0.0, 0.0],
        }
        for i, (v, t, d) in enumerate(zip(tps, target_probes, draft_probes, strict=True))
    ]


def test_an_ssd_pass_is_brought_back_on_both_cores(monkeypatch):
    """A pass whose draft core ran 20% slow (target as calibrated) counts 1.2^e_draft faster;
    without the calibration's draft probe only the target's probe adjusts it."""
    monkeypatch.setattr(compare, "trace_workload", lambda path: WL)
    monkeypatch.setattr(
        compare,
        "predict",
        lambda *a: {
            "tokens_per_s": 100.0,
            "batch_tokens_per_s": 100.0,
            "hit_rate": 0.5,
            "tokens_per_step": 2.0,
        },
    )
    monkeypatch.setattr(compare, "elasticities", lambda *a: {"target": 0.7, "draft": 0.4})
    prov = {"speed_probe_s": 0.002, "draft_probe_s": 0.0002}
    recs = _ssd_records([80.0, 96.0], [0.002, 0.002], [0.00024, 0.0002])
    r = compare.row(SimpleNamespace(provenance=prov), recs, seeds=1)
    assert r["core_elasticity"] == {"target": 0.7, "draft": 0.4}
    assert r["draft_speed"] == pytest.approx(1.1)
    adjusted = [80.0 * 1.2**0.4, 96.0]
    assert r["adjusted_measured"] == pytest.approx(sum(adjusted) / 2)
    assert r["error"] == pytest.approx(100.0 / 88.0 - 1.0)
    summary = compare.summarize([r])
    assert summary["two_core_points"] == 1 and summary["draft_speed_median"] == pytest.approx(1.1)
    assert "SSD on both cores (draft core x1.100" in compare.format_table([r], summary)
    plain = compare.row(SimpleNamespace(provenance={"speed_probe_s": 0.002}), recs, seeds=1)
    assert plain["core_elasticity"] is None and plain["adjusted_measured"] == pytest.approx(88.0)
    assert math.isclose(plain["speed"], 1.0)
