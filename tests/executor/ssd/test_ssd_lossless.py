"""Greedy losslessness of SSD across two processes: SSD == AR == transformers' generate.

32 prompts x 64 new tokens at batch 1 and 4, under every fallback (jit, fast, auto with its
threshold at 4 so that B=1 uses jit and B=4 fast), on the draft worker process (two CPU cores,
gloo). The draft is a perturbed copy of the target, so hits, misses, acceptances and
rejections all occur. The traces must rebuild the outputs, order their timestamps, and let the
bonus ranks predict the next step's hits.
"""

from __future__ import annotations

import pytest

from executor.engines.ar import AREngine
from executor.engines.common import Sampling, generate
from executor.ssd.engine import SSDEngine
from ssdsim.policy import Policy
from tests.executor.ssd.conftest import make_link
from tests.executor.ssd.ssd_checks import check_ranks_predict_hits, check_step_times
from tests.executor.test_lossless import _check_trace, hf_greedy

NEW_TOKENS = 32
K = 3
FAN_OUT = (3, 2, 1, 2)
FAN_OUT_MISS = (5, 2, 1, 0)


@pytest.fixture(scope="module")
def oracle(pair_dirs, prompts32):
    return hf_greedy(pair_dirs[0], prompts32, NEW_TOKENS)


@pytest.fixture(scope="module")
def link(pair_dirs):
    """One draft worker serves every case: the fallback is chosen per batch by the target."""
    policy = Policy(mode="ssd", k=K, fan_out=FAN_OUT, fan_out_miss=FAN_OUT_MISS)
    link = make_link(pair_dirs[1], policy, Sampling(), 4)
    yield link
    link.close()


def test_ar_equals_generate(target, prompts32, oracle):
    result = generate(
        AREngine(target, Sampling()),
        prompts32,
        batch_size=4,
        max_new_tokens=NEW_TOKENS,
        sampling=Sampling(),
    )
    assert result.outputs == oracle


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("fallback", ["jit", "fast", "auto"])
def test_ssd_equals_generate(link, target, prompts32, oracle, fallback, batch_size):
    policy = Policy(
        mode="ssd",
        k=K,
        fan_out=FAN_OUT,
        fan_out_miss=FAN_OUT_MISS,
        fallback=fallback,
        auto_threshold=4,
    )
    engine = SSDEngine(target, link, policy, Sampling())
    result = generate(
        engine, prompts32, batch_size=batch_size, max_new_tokens=NEW_TOKENS, sampling=Sampling()
    )
    assert result.outputs == oracle
    _check_trace(result, prompts32)
    check_ranks_predict_hits(result.steps, policy)
    check_step_times(result.steps)
    outcomes = [o for s in result.steps for o in s.seqs]
    assert 0.2 < result.summary.hit_rate < 1.0
    # rejections at the first proposal, and rows that accepted every proposal they got (fewer
    # than K on a hit whose tree the doorbell cut short)
    assert any(o.accepted_len == 0 < o.proposed for o in outcomes)
    assert any(o.accepted_len == o.proposed > 0 for o in outcomes)
    miss_proposers = {o.proposer for o in outcomes if not o.cache_hit}
    used = policy.fallback_for(batch_size)
    assert miss_proposers <= ({"draft"} if used == "jit" else {"fast", "none"})
    assert {s.fallback for s in result.steps} == {None, used}
    extra = result.summary.extra
    assert extra["draft_failure"] is None and extra["handshake_p50_s"] > 0
    assert 1 <= extra["draft_tree_depth_mean"] <= K  # the doorbell may cut trees short
    assert result.summary.draft_busy_s > 0 and result.summary.ssd_efficiency > 0
