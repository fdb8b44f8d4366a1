"""Contract objects: validation errors name field, value and expectation; JSON round trips."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ssdsim import (
    Chance,
    Coverage,
    ForwardLatency,
    Policy,
    Profile,
    RunSummary,
    SchemaError,
    SeqOutcome,
    StepRecord,
    TraceHeader,
    TraceWriter,
    Workload,
    read_trace,
    uniform_ssd,
)
from ssdsim.trace import summary_from_steps


def test_policy_round_trip(tmp_path):
    p = Policy(
        mode="ssd",
        k=3,
        fan_out=(3, 2, 1, 2),
        fan_out_miss=(5, 2, 1, 0),
        rescale=0.5,
        fallback="auto",
    )
    path = p.save(tmp_path / "policy.json")
    assert Policy.load(path) == p
    assert p.budget == 8
    assert p.fallback_for(1) == "jit" and p.fallback_for(64) == "fast"
    assert dataclasses.replace(p, rescale=1.0).rescale == 1.0


def test_fan_out_miss_defaults_to_fan_out():
    p = Policy(mode="ssd", k=2, fan_out=[2, 1, 1])
    assert p.fan_out_miss == (2, 1, 1)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(mode="ssd", k=2, fan_out=(1, 1)), "fan_out: got [1, 1], expected a list of k+1 = 3"),
        (
            dict(mode="ssd", k=1, fan_out=(1, -1)),
            "fan_out[1]: got -1, expected a non-negative integer",
        ),
        (dict(mode="ssd", k=1, fan_out=(0, 0)), "all-zero"),
        (dict(mode="ssd", k=1, fan_out=(1, 1), fan_out_miss=(2, 1)), "same sum"),
        (dict(mode="sd", k=0), "Policy.k: got 0, expected an integer >= 1 for mode 'sd'"),
        (dict(mode="ssd", k=1, fan_out=(1, 1), rescale=0.0), "Policy.rescale: got 0.0"),
        (dict(mode="ssd", k=1, fan_out=(1, 1), rescale=1.5), "Policy.rescale: got 1.5"),
        (dict(mode="turbo"), "Policy.mode: got 'turbo'"),
        (dict(mode="ssd", k=1, fan_out=(1, 1), fallback="slow"), "Policy.fallback: got 'slow'"),
    ],
)
def test_policy_rejects(kwargs, needle):
    with pytest.raises(SchemaError) as e:
        Policy(**kwargs)
    assert needle in str(e.value)


def test_policy_unknown_field_and_files(tmp_path):
    with pytest.raises(SchemaError, match=r"unknown field.*'fanout'"):
        Policy.from_dict({"mode": "ssd", "k": 1, "fanout": [1, 1]})
    with pytest.raises(SchemaError, match="does not exist"):
        Policy.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(SchemaError, match=r"bad.json.*not valid JSON"):
        Policy.load(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"mode": "ssd", "k": 2, "fan_out": [1, 1]}))
    with pytest.raises(SchemaError, match=r"wrong.json: Policy.fan_out"):
        Policy.load(wrong)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(batch_size=0), "Workload.batch_size: got 0, expected an integer >= 1"),
        (dict(temperature=-0.1), "Workload.temperature: got -0.1"),
        (dict(output_len_tokens=(5, 2)), "min <= max"),
    ],
)
def test_workload_rejects(kwargs, needle):
    with pytest.raises(SchemaError) as e:
        Workload(**kwargs)
    assert needle in str(e.value)


def test_workload_round_trip(tmp_path):
    w = Workload(
        batch_size=4,
        temperature=0.7,
        output_len_tokens=128,
        prompt_len_tokens=(64, 256),
        num_prompts=8,
    )
    assert w.output_len_tokens == (128, 128)
    assert Workload.load(w.save(tmp_path / "w.json")) == w
    with pytest.raises(SchemaError, match=r"unknown field.*'batchsize'"):
        Workload.from_dict({"batchsize": 2})


def test_profile_round_trip_and_nested_errors(tmp_path):
    prof = Profile(
        name="toy",
        target=ForwardLatency(fixed_s=1e-3, token_s=1e-4),
        draft=ForwardLatency(fixed_s=1e-4, token_s=1e-5),
        chance=Chance(
            alpha=(0.8, 0.7), coverage=Coverage(beta_reject=(0.4,), reject_tables=[[0.5, 0.7]])
        ),
    )
    assert Profile.load(prof.save(tmp_path / "p.json")) == prof
    d = prof.to_dict()
    d["target"]["fixed"] = 1.0
    with pytest.raises(SchemaError, match=r"Profile.target: unknown field.*'fixed'"):
        Profile.from_dict(d)
    d = prof.to_dict()
    d["chance"]["alpha"] = [0.5, 1.5]
    with pytest.raises(SchemaError, match=r"Chance.alpha\[1\]: got 1.5"):
        Profile.from_dict(d)
    d = prof.to_dict()
    d["chance"]["coverage"]["reject_tables"] = [[0.7, 0.5]]
    with pytest.raises(SchemaError, match="non-decreasing"):
        Profile.from_dict(d)


def test_trace_round_trip(tmp_path):
    steps = [
        StepRecord(
            step=0,
            t_start_s=0.0,
            t_end_s=0.1,
            verify_s=0.08,
            seqs=(
                SeqOutcome(
                    seq=0,
                    proposed=3,
                    accepted_len=2,
                    emitted_tokens=3,
                    cache_hit=False,
                    bonus_rank=2,
                ),
            ),
        ),
        StepRecord(
            step=1,
            t_start_s=0.1,
            t_end_s=0.2,
            verify_s=0.08,
            seqs=(
                SeqOutcome(
                    seq=0,
                    proposed=3,
                    accepted_len=3,
                    emitted_tokens=4,
                    cache_hit=True,
                    bonus_rank=1,
                ),
            ),
        ),
    ]
    summ = summary_from_steps(steps, mode="ssd", policy="x", temperature=0.0)
    assert summ.generated_tokens == 7 and summ.hit_rate == 0.5
    assert summ.tokens_per_s == pytest.approx(35.0) and summ.tokens_per_step == pytest.approx(3.5)
    hdr = TraceHeader(
        source="simulator", policy=uniform_ssd(3, 1).to_dict(), workload=Workload().to_dict()
    )
    with TraceWriter(tmp_path / "t.jsonl", hdr) as w:
        for s in steps:
            w.step(s)
        w.summary(summ)
    tr = read_trace(tmp_path / "t.jsonl")
    assert tr.steps == steps and tr.summary == summ and tr.header == hdr
    assert RunSummary.from_dict(summ.to_dict()) == summ


def test_trace_record_rejects():
    with pytest.raises(SchemaError, match="accepted_len: got 4, expected at most proposed = 3"):
        SeqOutcome(seq=0, proposed=3, accepted_len=4, emitted_tokens=1)
    with pytest.raises(SchemaError, match="t_end_s"):
        StepRecord(step=0, t_start_s=1.0, t_end_s=0.5, seqs=())
