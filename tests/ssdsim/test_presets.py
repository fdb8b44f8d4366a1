"""Shipped presets load, and the paper preset reproduces the paper's three numbers within 10%."""

from __future__ import annotations

import pytest

from ssdsim import Policy, list_presets, load_profile, paper_default
from ssdsim.simulator import simulate
from ssdsim.workload import paper_workload

PAPER = {"ar": 54.7, "sd": 161.8, "ssd": 255.8}  # tokens/s, B=1, greedy (REFERENCE.md section 10)
POLICIES = {"ar": Policy(mode="ar"), "sd": Policy(mode="sd", k=6), "ssd": paper_default()}


def test_presets_listed_and_valid():
    names = list_presets()
    assert {"paper-llama70b-h100", "embedded-cpu"} <= set(names)
    for name in names:
        prof = load_profile(name)
        assert prof.name == name and prof.description and prof.provenance


@pytest.mark.parametrize("mode", sorted(PAPER))
def test_paper_preset_reproduces_published_throughput(mode):
    prof = load_profile("paper-llama70b-h100")
    s = simulate(prof, POLICIES[mode], paper_workload(num_prompts=16))
    assert s.batch_tokens_per_s == pytest.approx(PAPER[mode], rel=0.10)


def test_paper_preset_predicts_about_ninety_percent():
    s = simulate(
        load_profile("paper-llama70b-h100"), paper_default(), paper_workload(num_prompts=16)
    )
    assert 0.85 <= s.hit_rate <= 0.92


def test_embedded_preset_runs_every_mode():
    prof = load_profile("embedded-cpu")
    wl = paper_workload(num_prompts=4)
    rates = {m: simulate(prof, p, wl).tokens_per_s for m, p in POLICIES.items()}
    assert all(r > 0 for r in rates.values())
