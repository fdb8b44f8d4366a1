"""The simulator's contract, run over AR, SD and SSD: conservation, time, seeds, engines, traces."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ssdsim import (
    Policy,
    Profile,
    RunSummary,
    SchemaError,
    Trace,
    Workload,
    read_trace,
    uniform_ssd,
)
from ssdsim.simulator import simulate
from ssdsim.trace import summary_from_steps

POLICIES = {
    "ar": Policy(mode="ar"),
    "sd": Policy(mode="sd", k=4),
    "ssd-jit": Policy(mode="ssd", k=4, fan_out=(4, 3, 2, 2, 4), fan_out_miss=(8, 3, 2, 1, 1)),
    "ssd-fast": uniform_ssd(3, 2, "fast"),
    "ssd-auto-sampled": uniform_ssd(3, 3, "auto", auto_threshold=3, rescale=0.5),
}
WORKLOAD = Workload(
    batch_size=3, output_len_tokens=(20, 60), prompt_len_tokens=(5, 50), num_prompts=7, seed=3
)


def _workload(name: str) -> Workload:
    return dataclasses.replace(WORKLOAD, temperature=0.8) if "sampled" in name else WORKLOAD


@dataclasses.dataclass
class Case:
    name: str
    summary: RunSummary
    trace: Trace
    profile: Profile


@pytest.fixture(params=sorted(POLICIES))
def case(request, gpu_like, tmp_path) -> Case:
    name = request.param
    path = tmp_path / f"{name}.jsonl"
    summary = simulate(gpu_like, POLICIES[name], _workload(name), trace_path=path)
    return Case(name, summary, read_trace(path), gpu_like)


def test_tokens_conserved(case):
    name, summary, trace = case.name, case.summary, case.trace
    plan_tokens = {}
    for step in trace.steps:
        for o in step.seqs:
            plan_tokens[o.seq] = plan_tokens.get(o.seq, 0) + o.emitted_tokens
    assert len(plan_tokens) == WORKLOAD.num_prompts
    assert all(20 <= v <= 60 for v in plan_tokens.values())
    assert summary.generated_tokens == sum(plan_tokens.values())
    from ssdsim.sim.plan import make_plan

    plan = make_plan(case.profile, POLICIES[name], _workload(name))
    assert [plan_tokens[i] for i in range(7)] == plan.output_lens.tolist()


def test_time_monotone_and_parts_add_up(case):
    name, trace = case.name, case.trace
    prev_end = 0.0
    for step in trace.steps:
        assert step.t_start_s == prev_end and step.t_end_s > step.t_start_s
        parts = step.verify_s + step.draft_s + step.wait_s + step.link_s
        assert step.t_end_s - step.t_start_s == pytest.approx(parts, rel=1e-9)
        if name.startswith("ssd"):
            assert (
                step.request_s
                <= step.response_s
                <= step.verify_start_s
                <= step.verify_end_s
                == step.t_end_s
            )
            assert step.prespec_start_s <= step.prespec_end_s
        prev_end = step.t_end_s


def test_outcomes_well_formed(case):
    name, trace = case.name, case.trace
    for step in trace.steps:
        for o in step.seqs:
            assert o.proposed == POLICIES[name].k
            if name.startswith("ssd"):
                assert o.cache_hit is not None and o.bonus_rank is not None
            else:
                assert o.cache_hit is None
    if name.startswith("ssd"):
        seen = set()
        for step in trace.steps:
            for o in step.seqs:
                if o.seq not in seen:
                    assert o.cache_hit is False  # the cache is empty after prefill
                    seen.add(o.seq)


@pytest.mark.parametrize("name", [n for n in sorted(POLICIES) if n.startswith("ssd")])
def test_ssd_hits_follow_ranks_and_fan_out(name, gpu_like, tmp_path):
    """A request hits iff the previous step's bonus rank lies inside the fan-out chosen by its previous hit."""
    pol = POLICIES[name]
    simulate(gpu_like, pol, _workload(name), trace_path=tmp_path / "t.jsonl")
    trace = read_trace(tmp_path / "t.jsonl")
    last = {}
    for step in trace.steps:
        for o in step.seqs:
            if o.seq in last:
                prev = last[o.seq]
                fan = pol.fan_out if prev.cache_hit else pol.fan_out_miss
                assert o.cache_hit == (prev.bonus_rank <= fan[prev.accepted_len])
            last[o.seq] = o


def test_summary_equals_summary_from_steps(case):
    summary, trace = case.summary, case.trace
    again = summary_from_steps(
        trace.steps,
        mode=summary.mode,
        policy=summary.policy,
        temperature=summary.temperature,
        draft_busy_s=summary.draft_busy_s,
        extra=summary.extra,
    )
    assert again == summary == trace.summary


def test_same_seed_same_trace_other_seed_differs(case, tmp_path):
    name, summary, trace, prof = case.name, case.summary, case.trace, case.profile
    pol, wl = POLICIES[name], _workload(name)
    simulate(prof, pol, wl, trace_path=tmp_path / "again.jsonl")
    assert read_trace(tmp_path / "again.jsonl").steps == trace.steps
    assert simulate(prof, pol, wl) == summary  # tracing does not change the numbers
    other = simulate(prof, pol, wl, seed=WORKLOAD.seed + 1, trace_path=tmp_path / "other.jsonl")
    assert read_trace(tmp_path / "other.jsonl").steps != trace.steps and other != summary


def test_simpy_reference_gives_identical_trace(case, tmp_path):
    name, summary, trace, prof = case.name, case.summary, case.trace, case.profile
    ref = simulate(
        prof, POLICIES[name], _workload(name), trace_path=tmp_path / "simpy.jsonl", engine="simpy"
    )
    assert read_trace(tmp_path / "simpy.jsonl").steps == trace.steps
    assert dataclasses.replace(ref, extra={}) == dataclasses.replace(summary, extra={})


def test_trace_header(case):
    name, trace = case.name, case.trace
    assert trace.header.source == "simulator" and trace.header.profile == "gpu-like"
    assert Policy.from_dict(trace.header.policy) == POLICIES[name]
    assert trace.header.seed == WORKLOAD.seed


def test_engines_agree_on_a_larger_batch(gpu_like):
    wl = Workload(batch_size=16, output_len_tokens=(50, 120), num_prompts=32, temperature=0.7)
    for pol in (uniform_ssd(5, 2, "jit"), uniform_ssd(5, 2, "fast"), Policy(mode="sd", k=3)):
        a = simulate(gpu_like, pol, wl)
        b = simulate(gpu_like, pol, wl, engine="simpy")
        assert dataclasses.replace(a, extra={}) == dataclasses.replace(b, extra={})


def test_prompt_set_lengths_are_used(gpu_like, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        "\n".join(json.dumps({"prompt_ids": list(range(n))}) for n in (10, 3000)) + "\n"
    )
    wl = Workload(batch_size=2, output_len_tokens=8, prompts=str(path))
    short = Workload(batch_size=2, output_len_tokens=8, prompt_len_tokens=10)
    assert (
        simulate(gpu_like, Policy(mode="ar"), wl).decode_s
        > simulate(gpu_like, Policy(mode="ar"), short).decode_s
    )


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(profile="paper"), "simulate: profile got str, expected a Profile"),
        (dict(policy={"mode": "ar"}), "simulate: policy got dict"),
        (dict(workload=None), "simulate: workload got NoneType"),
        (dict(seed=-1), "simulate: seed got -1"),
        (dict(engine="turbo"), "simulate: engine got 'turbo'"),
        (
            dict(workload=Workload(output_len_tokens=10**6)),
            "Workload.prompt_len_tokens + output_len_tokens",
        ),
    ],
)
def test_simulate_rejects_bad_input(gpu_like, kwargs, needle):
    args = dict(
        profile=dataclasses.replace(gpu_like, max_context_tokens=4096),
        policy=Policy(mode="ar"),
        workload=Workload(),
    )
    args.update(kwargs)
    with pytest.raises(SchemaError) as e:
        simulate(args.pop("profile"), args.pop("policy"), args.pop("workload"), **args)
    assert needle in str(e.value)


def test_missing_prompt_file_is_an_error(gpu_like, tmp_path):
    with pytest.raises(SchemaError, match="does not exist"):
        simulate(gpu_like, Policy(mode="ar"), Workload(prompts=str(tmp_path / "none.jsonl")))


def test_spread_is_dealt_by_systematic_sampling():
    """Each sequence's spread value comes from its own stratum of the sorted spread (n < m),
    and every value is dealt equally often when the sequences outnumber them (n = 3m)."""
    from ssdsim.sim.plan import deal_spread

    values = tuple(float(v) for v in np.linspace(0.1, 3.0, 30))
    for seed in range(5):
        dealt = np.sort(deal_spread(values, 6, np.random.default_rng(seed)))
        for i, v in enumerate(dealt):
            assert values[5 * i] <= v <= values[5 * i + 4]
        tripled = deal_spread(values[:4], 12, np.random.default_rng(seed))
        assert sorted(tripled.tolist()) == sorted(values[:4] * 3)
    orders = {tuple(deal_spread(values, 30, np.random.default_rng(s))) for s in range(5)}
    assert len(orders) == 5  # the order is the seed's
