"""Sampled losslessness of SSD: at T > 0 its output has exactly the target's distribution.

The runtime's chi-square machinery (tests/executor/test_distribution.py: a vocabulary-8 target,
20,000 continuations of one prompt by 4 tokens, exact marginals by enumeration with
transformers) applied to SSD. The draft runs in-process (``LocalDraft``: the worker's own
``DraftSpeculator`` calls, serve then pre-speculate), so 20,000 sequences are one batch and
hits, misses, jit and fast rows all occur in it. Saguaro sampling with C = 1 and C < 1 (and a
draft temperature unlike the target's) must pass (p > 0.001 at every position); a draft that
samples from q' but ships the plain q must fail; so must trees cut short after one step (the
doorbell: hits then verify one proposal). The run's bonus ranks must also predict its
hits at T > 0.
"""

from __future__ import annotations

import pytest

from executor.engines.common import Sampling
from executor.ssd.engine import SSDEngine
from executor.ssd.link import LocalDraft
from executor.ssd.speculator import DraftSpeculator, spec_config
from kernels.sampling import draft_distribution, sample
from ssdsim.policy import Policy
from tests.executor import test_distribution as runtime
from tests.executor.ssd.ssd_checks import check_ranks_predict_hits
from tests.executor.test_distribution import SAMPLES, TEMPERATURE, _p_values

# the runtime's fixtures: the vocabulary-8 pair, its models and the exact marginals
dirs, models, exact_marginals = runtime.dirs, runtime.models, runtime.exact_marginals

K = 2
FAN_OUT = (2, 1, 2)
FAN_OUT_MISS = (3, 1, 1)


class ShipsPlainQ(DraftSpeculator):
    """Broken on purpose: samples from Saguaro's q' but hands verification the plain q."""

    def _draw(self, logits, depth, top_n):
        t = self.cfg.draft_temperature
        q = draft_distribution(logits, t)
        q_prime = draft_distribution(logits, t, rescale=self.cfg.rescale, top_n=top_n[depth] or 1)
        return sample(q_prime, self.generator), q


def _engine(models, policy, sampling, speculator=DraftSpeculator, stop=None):
    target, draft = models
    link = LocalDraft(speculator(draft, spec_config(policy, sampling)), SAMPLES, stop=stop)
    return SSDEngine(target, link, policy, sampling)


@pytest.mark.parametrize(
    ("fallback", "rescale", "draft_temperature", "cut"),
    [
        ("jit", 1.0, None, False),
        ("jit", 0.3, 0.6, False),
        ("fast", 0.3, None, False),
        ("jit", 0.3, None, True),
    ],
    ids=["jit_C1", "jit_C0.3_draftT0.6", "fast_C0.3", "jit_C0.3_tree_cut_at_1"],
)
def test_ssd_samples_follow_target(
    models, exact_marginals, fallback, rescale, draft_temperature, cut
):
    policy = Policy(
        mode="ssd",
        k=K,
        fan_out=FAN_OUT,
        fan_out_miss=FAN_OUT_MISS,
        rescale=rescale,
        fallback=fallback,
    )
    sampling = Sampling(temperature=TEMPERATURE, draft_temperature=draft_temperature, seed=5)
    engine = _engine(models, policy, sampling, stop=(lambda: True) if cut else None)
    p_values, result = _p_values(engine, sampling, exact_marginals)
    assert min(p_values) > 1e-3, p_values
    proposed = {o.proposed for s in result.steps for o in s.seqs if o.cache_hit}
    assert proposed == ({1} if cut else {K})
    assert 0.05 < result.summary.hit_rate < 0.95  # both hits and misses were verified
    accepted = [o.accepted_len for s in result.steps for o in s.seqs]
    assert 0 < sum(accepted) / len(accepted) < K
    check_ranks_predict_hits(result.steps, policy)


def test_shipping_q_instead_of_q_prime_fails(models, exact_marginals):
    policy = Policy(mode="ssd", k=K, fan_out=FAN_OUT, fan_out_miss=FAN_OUT_MISS, rescale=0.3)
    sampling = Sampling(temperature=TEMPERATURE, seed=6)
    p_values, _ = _p_values(
        _engine(models, policy, sampling, ShipsPlainQ), sampling, exact_marginals
    )
    assert min(p_values) < 1e-3, p_values


def test_two_process_samples_follow_target(dirs, models, exact_marginals):
    """The same test through the draft worker process (gloo, q in shared memory)."""
    from executor.ssd.devices import plan_devices
    from executor.ssd.remote import open_engine

    policy = Policy(
        mode="ssd", k=K, fan_out=FAN_OUT, fan_out_miss=FAN_OUT_MISS, rescale=0.3, fallback="auto"
    )
    sampling = Sampling(temperature=TEMPERATURE, draft_temperature=0.6, seed=7)
    with open_engine(
        models[0],
        dirs[1],
        policy,
        sampling,
        plan_devices("cpu"),
        batch_size=SAMPLES,
        timeout_s=60.0,
        handshake_pings=5,
    ) as engine:
        p_values, result = _p_values(engine, sampling, exact_marginals)
    assert min(p_values) > 1e-3, p_values
    assert 0.05 < result.summary.hit_rate < 0.95
    assert {s.fallback for s in result.steps} == {"fast"}  # auto at B = 20,000
    check_ranks_predict_hits(result.steps, policy)
