"""Unit tests of SSD's small pieces: the n-gram speculator, the wire format, device plans, options."""

from __future__ import annotations

import argparse

import pytest
import torch

from executor.ssd.devices import DeviceError, plan_devices
from executor.ssd.fast import NgramSpeculator
from executor.ssd.options import add_ssd_flags, check_policy_fits, policy_from_args
from executor.ssd.protocol import (
    Cmd,
    DraftTimes,
    SpecRequest,
    SpecResponse,
    pack_prompts,
    pack_request,
    pack_response,
    request_numel,
    response_numel,
    unpack_prompts,
    unpack_request,
    unpack_response,
)
from ssdsim._schema import SchemaError
from ssdsim.policy import Policy


# -- n-gram speculator -------------------------------------------------------------------------
def test_ngram_copies_what_followed_the_latest_match():
    fast = NgramSpeculator(3)
    fast.reset([[1, 2, 3, 4, 9, 9, 1, 2, 3, 7, 1, 2, 3]])
    # the suffix 1 2 3 last occurred before 7: propose 7 1 2 (the longest n-gram wins)
    assert fast.propose_row(0) == [7, 1, 2]
    fast.extend(0, [7])
    # suffix 2 3 7 occurred once, followed by 1 2 3
    assert fast.propose_row(0) == [1, 2, 3]


def test_ngram_continues_a_repeating_pattern_into_its_own_proposal():
    fast = NgramSpeculator(5)
    fast.reset([[8, 5, 6, 5, 6]])
    # "5 6" occurred at the start, followed by "5 6" (period 2): continue the period
    assert fast.propose_row(0) == [5, 6, 5, 6, 5]


def test_ngram_without_a_match_proposes_nothing_and_never_matches_itself():
    fast = NgramSpeculator(2)
    fast.reset([[1, 2, 3], [4]])
    assert fast.propose_row(0) == [] and fast.propose_row(1) == []
    tokens, num = fast.propose([0, 1], 3)
    assert tokens.shape == (3, 2) and num.tolist() == [0, 0, 0]
    fast.extend(1, [4])
    assert fast.propose_row(1) == [4, 4]


# -- wire format --------------------------------------------------------------------------------
def test_request_and_response_round_trip():
    b, k, max_b = 3, 4, 5
    g = torch.Generator().manual_seed(0)
    req = SpecRequest(
        seq=torch.tensor([7, 8, 9]),
        accepted_len=torch.tensor([-1, 0, 4]),
        token=torch.tensor([5, 4095, 0]),
        seq_len=torch.tensor([10, 300, 12]),
        live=torch.tensor([True, False, True]),
        fast_tokens=torch.randint(0, 4096, (b, k), generator=g),
        num_fast=torch.tensor([4, 0, 2]),
    )
    buf = torch.zeros(request_numel(max_b, k), dtype=torch.float64)
    cmd, step, got = unpack_request(pack_request(buf, Cmd.SPEC, req, step=17), k)
    assert (cmd, step) == (Cmd.SPEC, 17)
    for name in ("seq", "accepted_len", "token", "seq_len", "live", "fast_tokens", "num_fast"):
        assert torch.equal(getattr(got, name), getattr(req, name)), name
    resp = SpecResponse(
        cache_hit=torch.tensor([False, True, True]),
        tokens=torch.randint(0, 4096, (b, k), generator=g),
        num_proposals=torch.tensor([4, 4, 2]),
        prev_rank=torch.tensor([0, 3, 1]),
        times=DraftTimes(1.5, 2.25, 0.125, 0.5, 0.75, 0.0625, 0.1875, 2.0),
    )
    rbuf = torch.zeros(response_numel(max_b, k), dtype=torch.float64)
    back = unpack_response(pack_response(rbuf, resp), k, None)
    for name in ("cache_hit", "tokens", "num_proposals", "prev_rank"):
        assert torch.equal(getattr(back, name), getattr(resp, name)), name
    assert back.times == resp.times


def test_prompts_round_trip():
    prompts, ids = [[1, 2, 3], [9], [4, 5]], [10, 11, 12]
    assert unpack_prompts(pack_prompts(prompts, ids), 3) == (prompts, ids)


# -- devices and options ------------------------------------------------------------------------
def test_device_plans():
    plan = plan_devices("cpu")
    assert plan.backend == "gloo" and plan.target.type == plan.draft.type == "cpu"
    assert plan.target_core != plan.draft_core
    assert plan_devices("cpu,cpu").target_core is None
    for bad, msg in (
        ("tpu", "expected auto"),
        ("tpu,cpu", "not cpu"),
        ("cpu:999,cpu:0", "core '999'"),
        ("cuda:3,cuda:4", "CUDA"),
    ):
        with pytest.raises(DeviceError, match=msg):
            plan_devices(bad)


def _ns(**kw):
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default=None)
    p.add_argument("--k", type=int, default=None)
    p.add_argument("--draft-temperature", type=float, default=None)
    add_ssd_flags(p)
    argv = [f"--{n.replace('_', '-')}={v}" for n, v in kw.items()]
    return p.parse_args(argv)


def test_policy_from_flags_and_file(tmp_path):
    pol = policy_from_args(_ns(mode="ssd", k=2, fan_out="2,1,1", fallback="fast"))
    assert pol.fan_out == pol.fan_out_miss == (2, 1, 1) and pol.fallback == "fast"
    assert policy_from_args(_ns(mode="ssd")).fan_out == (3,) * 5
    path = Policy(mode="ssd", k=1, fan_out=(2, 1), rescale=0.5).save(tmp_path / "p.json")
    assert policy_from_args(_ns(policy=str(path))).rescale == 0.5
    with pytest.raises(SchemaError, match="not both"):
        policy_from_args(_ns(policy=str(path), k=3))
    with pytest.raises(SchemaError, match="only for --mode ssd"):
        policy_from_args(_ns(mode="sd", fan_out="1,1"))


def test_policy_must_fit_the_pair():
    pol = Policy(mode="ssd", k=8, fan_out=(3,) * 9)
    with pytest.raises(SchemaError, match="exceed the models' context of 256"):
        check_policy_fits(
            pol, vocab_size=512, max_positions=256, longest_prompt=48, max_new_tokens=200
        )
    wide = Policy(mode="ssd", k=1, fan_out=(8, 1), fan_out_miss=(1, 8))
    with pytest.raises(SchemaError, match="vocabulary of 8"):
        check_policy_fits(wide, vocab_size=8, max_positions=99, longest_prompt=3, max_new_tokens=4)


# -- the shared speculation cache --------------------------------------------------------------
def test_shared_cache_publish_then_lookup():
    from executor.ssd.shared_cache import SharedCache

    owner = SharedCache.create(max_batch=3, budget=2, k=2, vocab_size=5, with_q=True)
    try:
        # the worker maps the same files and writes a cache for a batch of 2 rows
        worker = SharedCache(owner.paths, max_batch=3, budget=2, k=2, vocab_size=5)
        cache = worker.spec_cache(2, 5)
        cache.tokens.copy_(torch.tensor([[1, 2], [3, 4], [5, 6], [7, 8]]))
        cache.q.copy_(torch.arange(4 * 2 * 5, dtype=torch.float32).view(4, 2, 5))
        # row 0: branches (index 0, token 9) and (index 1, token 8); row 1: (0, 7), (2, 6)
        cache.store(
            torch.tensor([10, 11]),
            torch.tensor([[9, 8], [7, 6]]),
            torch.tensor([[0, 1], [0, 2]]),
            2,
        )
        assert owner.published() == 0 and not worker.stop_requested(1)
        owner.ring(1)
        assert worker.stop_requested(1) and not worker.stop_requested(2)
        worker.publish(1, cache, torch.tensor([3, 0]), (1.0, 2.0, 0.5, 0.25, 2.0))
        assert owner.published() == 1
        look = owner.lookup(torch.tensor([10, 11]), torch.tensor([1, 0]), torch.tensor([8, 5]))
        assert look.hit.tolist() == [True, False]
        assert look.tokens[0].tolist() == [3, 4] and look.num.tolist() == [2, 2]
        assert torch.equal(look.q[0], cache.q[1])
        assert look.ranks == [3, 0] and look.prespec == (1.0, 2.0, 0.5, 0.25, 2.0)
        # a copy: the worker overwriting its cache does not change what the target read
        cache.tokens.zero_()
        assert look.tokens[0].tolist() == [3, 4]
        # a forced miss (accepted -1), another sequence, and an invalid (cut at depth 0) cache
        assert not owner.lookup(torch.tensor([10]), torch.tensor([-1]), torch.tensor([8])).hit.any()
        assert not owner.lookup(torch.tensor([12]), torch.tensor([1]), torch.tensor([8])).hit.any()
        cache.store(torch.tensor([10, 11]), cache.forks.clone(), cache.index.clone(), 0)
        worker.publish(2, cache, torch.tensor([0, 0]), (0.0,) * 5)
        assert not owner.lookup(torch.tensor([10]), torch.tensor([1]), torch.tensor([8])).hit.any()
    finally:
        for f in owner.files():
            f.unlink(missing_ok=True)
