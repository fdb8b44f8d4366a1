"""The doorbell (Profile.doorbell): the draft cuts its pre-speculation tree when the next request is sent."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ssdsim import ForwardLatency, Workload, read_trace, uniform_ssd
from ssdsim.latency import doorbell_busy_s, doorbell_depth
from ssdsim.simulator import simulate

WL = Workload(batch_size=2, output_len_tokens=(60, 80), num_prompts=4)


def test_depth_counts_the_tree_steps_started_before_the_request():
    # glue 1 s, tree steps of 2 s: steps start at 1, 3, 5, 7 (k=4); the request is sent at window
    windows = [0.5, 1.0, 2.9, 3.0, 3.1, 6.0, 100.0]
    assert doorbell_depth(1.0, 2.0, windows, 4).tolist() == [1, 1, 1, 1, 2, 3, 4]


def test_the_request_waits_a_random_phase_of_the_step_in_progress():
    # glue 1 s, steps of 2 s, k=4: the tree runs from 1 to 9 s; a request at 4 s lands in step 2
    phase = np.array([0.0, 0.25, 0.999])
    assert doorbell_busy_s(1.0, 2.0, 4.0, 4, phase).tolist() == pytest.approx([4.0, 4.5, 5.998])
    # at least the glue and one step, at most the whole tree
    assert doorbell_busy_s(1.0, 2.0, [0.5, 100.0], 4, [0.5, 0.5]).tolist() == [3.0, 9.0]
    # over uniform phases the wait after the request averages half a step
    u = np.random.default_rng(0).random(20000)
    assert np.mean(doorbell_busy_s(1.0, 2.0, 4.0, 4, u) - 4.0) == pytest.approx(1.0, abs=0.03)
    # the depth holds as many steps as that time, rounded: 2.87 steps of room give 3 or 4, 3.37
    # on average (mean costs: 3 every time)
    depth = doorbell_depth(1.0, 2.0, 1.0 + 2 * 2.87, 4, u)
    assert set(depth.tolist()) == {3, 4} and depth.mean() == pytest.approx(3.37, abs=0.02)
    busy = doorbell_busy_s(1.0, 2.0, 1.0 + 2 * 2.87, 4, u)
    assert np.mean(busy - 1.0) == pytest.approx(2.0 * depth.mean(), rel=0.01)


def _slow_tree(toy):
    """Tree steps as slow as a verification: a whole tree never fits in one."""
    return dataclasses.replace(toy, draft=ForwardLatency(fixed_s=0.02, token_s=2e-5))


def test_doorbell_cuts_hits_short_and_stops_the_waiting(toy, tmp_path):
    prof = _slow_tree(toy)
    pol = uniform_ssd(4, 3, "fast")
    waited = simulate(prof, pol, WL, seed=1, trace_path=tmp_path / "wait.jsonl")
    belled = simulate(
        dataclasses.replace(prof, doorbell=True),
        pol,
        WL,
        seed=1,
        trace_path=tmp_path / "bell.jsonl",
    )
    assert belled.tokens_per_s > waited.tokens_per_s
    assert belled.wait_s < 0.5 * waited.wait_s  # glue + one tree step at most, not the whole tree
    hits = [o for s in read_trace(tmp_path / "bell.jsonl").steps for o in s.seqs if o.cache_hit]
    assert hits and max(o.proposed for o in hits) < pol.k
    assert all(o.accepted_len <= o.proposed for o in hits)
    full = [o for s in read_trace(tmp_path / "wait.jsonl").steps for o in s.seqs if o.cache_hit]
    assert {o.proposed for o in full} == {pol.k}
    # shorter speculations: fewer tokens per step than with whole trees
    assert belled.tokens_per_step < waited.tokens_per_step


def test_doorbell_changes_nothing_when_the_tree_fits(toy):
    pol = uniform_ssd(3, 2, "jit")
    for seed in (0, 1):
        a = simulate(toy, pol, WL, seed=seed)
        b = simulate(dataclasses.replace(toy, doorbell=True), pol, WL, seed=seed)
        assert np.isclose(a.tokens_per_s, b.tokens_per_s, rtol=1e-9)
        assert a.hit_rate == b.hit_rate


def test_doorbell_engines_agree(toy):
    prof = dataclasses.replace(_slow_tree(toy), doorbell=True)
    pol = uniform_ssd(4, 3, "jit")
    fast = simulate(prof, pol, WL, seed=3)
    ref = simulate(prof, pol, WL, seed=3, engine="simpy")
    assert fast.tokens_per_s == ref.tokens_per_s and fast.hit_rate == ref.hit_rate
