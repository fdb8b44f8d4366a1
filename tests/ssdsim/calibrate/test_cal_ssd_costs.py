"""Calibration of what SSD adds (host work per step) and of per-sequence acceptance spread.

Simulated traces relabelled as executor traces (the SSD cost fits read executor traces only):
the simulator's SSD step is link + wait + jit + link + fast + target forward + SSD host work,
so the fit must recover the host work exactly. A pair whose sequences differ in acceptance must
give a spread whose ratio between its groups matches the truth.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

import pytest

from ssdsim import ChancePoint, Coverage, Policy, Workload, read_trace, uniform_ssd
from ssdsim.calibrate import calibrate
from ssdsim.calibrate.ssd_costs import fit_ssd_costs
from ssdsim.simulator import simulate

WL = Workload(batch_size=2, output_len_tokens=120, prompt_len_tokens=(60, 90), num_prompts=6)


def _as_executor(path: Path) -> Path:
    lines = path.read_text().splitlines()
    head = json.loads(lines[0])
    head["source"] = "executor"
    path.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    return path


def test_ssd_host_work_recovered(make_toy, tmp_path):
    prof = make_toy(mode_overheads={"ssd": (2.5e-3, 0.0), "sd": (1e-4, 1e-5)})
    paths = []
    for i, pol in enumerate((uniform_ssd(3, 2, "jit"), uniform_ssd(4, 2, "fast"))):
        p = tmp_path / f"ssd{i}.jsonl"
        simulate(prof, pol, dataclasses.replace(WL, seed=i), trace_path=p)
        paths.append(_as_executor(p))
    traces = {str(p): read_trace(p) for p in paths}
    fit = fit_ssd_costs(prof, traces).overhead
    assert fit is not None
    assert fit.at(2) == pytest.approx(2.5e-3, rel=1e-6)


def _spread_profile(make_toy, spread: tuple[float, ...]):
    point = ChancePoint(
        temperature=0.0,
        rescale=1.0,
        alpha=(0.8,),
        coverage=Coverage(beta_reject=(0.3,), beta_bonus=0.25),
        seq_spread=spread,
    )
    toy = make_toy()
    return dataclasses.replace(toy, chance=dataclasses.replace(toy.chance, points=(point,)))


def _per_seq_accepted(path: Path) -> list[float]:
    acc: dict[int, list[int]] = {}
    for s in read_trace(path).steps:
        for o in s.seqs:
            acc.setdefault(o.seq, []).append(o.accepted_len)
    return [statistics.fmean(v) for v in acc.values()]


def test_sequences_differ_with_a_spread_and_calibration_finds_it(make_toy, tmp_path):
    wl = Workload(batch_size=1, output_len_tokens=300, prompt_len_tokens=50, num_prompts=12)
    pol = Policy(mode="sd", k=4)
    alike, apart = tmp_path / "alike.jsonl", tmp_path / "apart.jsonl"
    simulate(_spread_profile(make_toy, ()), pol, wl, trace_path=alike)
    simulate(_spread_profile(make_toy, (0.4, 1.6)), pol, wl, trace_path=apart)
    assert statistics.pstdev(_per_seq_accepted(apart)) > 3 * statistics.pstdev(
        _per_seq_accepted(alike)
    )
    (fit,) = calibrate([str(apart)], base=make_toy()).points
    spread = fit.point.seq_spread
    assert len(spread) == 12
    low, high = statistics.median(spread[:6]), statistics.median(spread[6:])
    assert high / low == pytest.approx(4.0, rel=0.35)
    # alike sequences: what differs between them is sampling noise, which the fit shrinks away
    (same,) = calibrate([str(alike)], base=make_toy()).points
    narrow = same.point.seq_spread
    assert not narrow or max(narrow) / min(narrow) < 1.5


def test_fast_rows_have_their_own_spread(make_toy, tmp_path):
    """Sequences that differ only in how well the fast speculator (n-gram) predicts them: the
    calibration finds that spread on the fast rows and none for the draft, and the simulator
    applies it to fast rows only (SD, which has none, is unchanged draw for draw)."""
    base = _spread_profile(make_toy, ())
    (pt,) = base.chance.points
    fast_pt = dataclasses.replace(pt, alpha_fast=(0.7,), seq_spread_fast=(0.3, 2.0))
    truth = dataclasses.replace(base, chance=dataclasses.replace(base.chance, points=(fast_pt,)))
    wl = Workload(batch_size=1, output_len_tokens=300, prompt_len_tokens=50, num_prompts=12)
    sparse = Policy(
        mode="ssd", k=4, fan_out=(0, 0, 0, 0, 1), fan_out_miss=(1, 0, 0, 0, 0), fallback="fast"
    )
    p = tmp_path / "fast.jsonl"
    simulate(truth, sparse, wl, trace_path=p)
    (fit,) = calibrate([str(p)], base=make_toy()).points
    spread = fit.point.seq_spread_fast
    assert len(spread) == 12
    low, high = statistics.median(spread[:6]), statistics.median(spread[6:])
    assert high / low == pytest.approx(2.0 / 0.3, rel=0.35)
    draft = fit.point.seq_spread  # few draft rows here: some noise is left, no real spread
    assert not draft or max(draft) / min(draft) < 2.0
    sd = Policy(mode="sd", k=4)
    assert simulate(truth, sd, wl) == simulate(base, sd, wl)


def test_jit_scale_recovered(make_toy, tmp_path):
    """A worker whose jit decoding runs 1.7x the modelled draft chain: the fit finds 1.7."""
    truth = dataclasses.replace(make_toy(), jit_scale=1.7)
    p = tmp_path / "jit.jsonl"
    simulate(truth, uniform_ssd(3, 1, "jit"), WL, trace_path=p)
    traces = {str(p): read_trace(_as_executor(p))}
    assert any(not o.cache_hit for s in traces[str(p)].steps for o in s.seqs)
    fit = fit_ssd_costs(dataclasses.replace(truth, jit_scale=1.0), traces)
    assert fit.jit_scale == pytest.approx(1.7, rel=0.02) and fit.jit_fixed_s == 0.0
    # fast misses say nothing about jit
    q = tmp_path / "fast.jsonl"
    simulate(truth, uniform_ssd(3, 1, "fast"), WL, trace_path=q)
    assert fit_ssd_costs(truth, {str(q): read_trace(_as_executor(q))}).jit_scale is None


def test_jit_fixed_part_recovered_from_two_lookaheads(make_toy, tmp_path):
    """jit decoding at 1.3x the chain plus 0.4 ms a step with misses, traced at k = 2 and 6:
    the line through the (k, missed rows) cells finds both; one scale alone (the old fit) would
    price k = 2 too cheap and k = 6 too dear."""
    truth = dataclasses.replace(make_toy(), jit_scale=1.3, jit_fixed_s=4e-4)
    traces = {}
    for k in (2, 6):
        p = tmp_path / f"jit{k}.jsonl"
        simulate(truth, uniform_ssd(k, 1, "jit"), WL, trace_path=p)
        traces[str(p)] = read_trace(_as_executor(p))
    fit = fit_ssd_costs(dataclasses.replace(truth, jit_scale=1.0, jit_fixed_s=0.0), traces)
    assert fit.jit_scale == pytest.approx(1.3, rel=0.03)
    assert fit.jit_fixed_s == pytest.approx(4e-4, rel=0.05)
    one = {p: t for p, t in traces.items() if "jit2" in p}  # one k: a scale alone
    fit1 = fit_ssd_costs(dataclasses.replace(truth, jit_scale=1.0, jit_fixed_s=0.0), one)
    assert fit1.jit_fixed_s == 0.0 and fit1.jit_scale > 1.35  # the fixed part absorbed


def test_jit_per_row_cost_and_sampling_scale_recovered(make_toy, tmp_path):
    """jit at 1.3x the chain + 0.4 ms + 0.5 ms per missed row (B = 4, k = 2 and 6: one to four
    missed rows), and 1.25x all of that at T = 1: the greedy traces give the three parts, the
    T = 1 ones the scale; without the per-row part the fit could not price four missed rows."""
    truth = dataclasses.replace(
        make_toy(), jit_scale=1.3, jit_fixed_s=4e-4, jit_row_s=5e-4, jit_sampling_scale=1.25
    )
    wl = dataclasses.replace(WL, batch_size=4, num_prompts=8)
    traces = {}
    for k, t in ((2, 0.0), (6, 0.0), (4, 1.0)):
        p = tmp_path / f"jit{k}_{t}.jsonl"
        simulate(
            truth, uniform_ssd(k, 1, "jit"), dataclasses.replace(wl, temperature=t), trace_path=p
        )
        traces[str(p)] = read_trace(_as_executor(p))
    missed = {sum(1 for o in s.seqs if not o.cache_hit) for tr in traces.values() for s in tr.steps}
    assert {1, 2, 3} <= missed
    blank = dataclasses.replace(
        truth, jit_scale=1.0, jit_fixed_s=0.0, jit_row_s=0.0, jit_sampling_scale=0.0
    )
    fit = fit_ssd_costs(blank, traces)
    assert fit.jit_scale == pytest.approx(1.3, rel=0.03)
    assert fit.jit_fixed_s == pytest.approx(4e-4, rel=0.1)
    assert fit.jit_row_s == pytest.approx(5e-4, rel=0.05)
    assert fit.jit_sampling_scale == pytest.approx(1.25, rel=0.02)
    greedy = {p: t for p, t in traces.items() if "_0.0" in p}
    assert fit_ssd_costs(blank, greedy).jit_sampling_scale is None


def test_jit_sampling_scale_unset_keeps_the_draft_chain_scale(make_toy):
    """A profile without jit's own sampling scale prices jit at T > 0 as before: the chain
    times ``draft_sampling_scale``; with it, all of jit times its own."""
    from ssdsim import latency as lat

    prof = dataclasses.replace(
        make_toy(), jit_fixed_s=4e-4, jit_row_s=1e-4, draft_sampling_scale=1.5
    )
    chain = lat.draft_chain_s(prof, 2, 4, 100.0) * prof.jit_scale
    assert lat.jit_s(prof, 2, 4, 100.0) == pytest.approx(chain + 6e-4)
    assert lat.jit_s(prof, 2, 4, 100.0, True) == pytest.approx(chain * 1.5 + 6e-4)
    own = dataclasses.replace(prof, jit_sampling_scale=1.2)
    assert lat.jit_s(own, 2, 4, 100.0, True) == pytest.approx((chain + 6e-4) * 1.2)
    assert lat.jit_s(own, 0, 4, 100.0, True) == 0.0


def test_jit_answer_recovered_and_kept_out_of_host_work(make_toy, tmp_path):
    """The target waits 0.3 ms beyond the message for each jit answer at B=2: the fit finds it
    from the answered steps' link against the others', and the host work stays as without it."""
    truth = dataclasses.replace(make_toy(), jit_answer_s={2: 3e-4})
    traces = {}
    for fallback in ("jit", "fast"):
        p = tmp_path / f"{fallback}.jsonl"
        simulate(truth, uniform_ssd(3, 1, fallback), WL, trace_path=p)
        traces[str(p)] = read_trace(_as_executor(p))
    fit = fit_ssd_costs(dataclasses.replace(truth, jit_answer_s={}), traces)
    assert fit.jit_answer_s == {2: pytest.approx(3e-4, rel=0.01)}
    plain = dataclasses.replace(truth, jit_answer_s={})
    without = {}
    for fallback in ("jit", "fast"):
        p = tmp_path / f"{fallback}_plain.jsonl"
        simulate(plain, uniform_ssd(3, 1, fallback), WL, trace_path=p)
        without[str(p)] = read_trace(_as_executor(p))
    base = fit_ssd_costs(plain, without)
    assert base.jit_answer_s == {2: pytest.approx(0.0, abs=1e-9)}
    assert fit.overhead.fixed_s == pytest.approx(base.overhead.fixed_s, rel=0.02)
    # the simulator puts it on the critical path of answered steps only
    sim = simulate(truth, uniform_ssd(3, 1, "jit"), WL)
    assert sim.tokens_per_s < simulate(plain, uniform_ssd(3, 1, "jit"), WL).tokens_per_s
    fast = uniform_ssd(3, 1, "fast")
    assert simulate(truth, fast, WL).tokens_per_s == simulate(plain, fast, WL).tokens_per_s


def test_distribution_rows_at_t_above_zero_recovered(make_toy, tmp_path):
    """SSD at T > 0 pays 0.3 ms per draft distribution (k per row the draft proposed for: hits,
    and jit's misses, not the fast speculator's) beside 2.5 ms a step and the sampling
    verification SD pays (0.2 ms a step, 10 us a scored row): the fit takes the step's host
    work from the greedy traces, the sampling's from the profile (AR/SD's fit) and the
    per-distribution work from what is left."""
    sampling = dict(verify_sample_step_s=2e-4, verify_sample_row_s=1e-5)
    truth = make_toy(mode_overheads={"ssd": (2.5e-3, 0.0)}, ssd_dist_row_s=3e-4, **sampling)
    paths = []
    for i, t in enumerate((0.0, 1.0, 1.0)):
        p = tmp_path / f"ssd{i}.jsonl"
        wl = dataclasses.replace(WL, temperature=t, seed=i, batch_size=1 + i)
        simulate(truth, uniform_ssd(3 + i, 2, "jit" if i == 1 else "fast"), wl, trace_path=p)
        paths.append(_as_executor(p))
    traces = {str(p): read_trace(p) for p in paths}
    fit = fit_ssd_costs(dataclasses.replace(truth, ssd_dist_row_s=0.0), traces)
    assert fit.overhead is not None and fit.overhead.at(2) == pytest.approx(2.5e-3, rel=1e-6)
    assert fit.dist_row_s == pytest.approx(3e-4, rel=1e-6)
    # without the sampling's costs in the profile, the distributions absorb them
    unknown = dataclasses.replace(truth, ssd_dist_row_s=0.0, verify_sample_step_s=0.0)
    assert fit_ssd_costs(unknown, traces).dist_row_s > 3.1e-4
    # greedy traces alone say nothing about it
    greedy = {paths[0].as_posix(): traces[str(paths[0])]}
    assert fit_ssd_costs(truth, greedy).dist_row_s is None


def test_distribution_rows_cost_time_only_when_sampling(make_toy):
    prof = make_toy(mode_overheads={"ssd": (2.5e-3, 0.0)})
    pol = uniform_ssd(4, 2, "fast")
    for t, slower in ((0.0, False), (1.0, True)):
        wl = dataclasses.replace(WL, temperature=t)
        base = simulate(prof, pol, wl).tokens_per_s
        paid = simulate(dataclasses.replace(prof, ssd_dist_row_s=1e-3), pol, wl).tokens_per_s
        assert (paid < base) is slower and (paid == base) is not slower


def _tree_trace(prof, policy: Policy, batch: int, temperature: float, row_s: float, off_s: float):
    """An SSD executor trace whose summary says each tree step took the greedy model's seconds
    plus ``row_s`` per branch row (B * M) plus ``off_s`` (the model's error at that tree size)."""
    from ssdsim import latency as lat
    from ssdsim.calibrate.ssd_costs import _mean_context
    from ssdsim.trace import RunSummary, Trace, TraceHeader

    wl = dataclasses.replace(WL, batch_size=batch, temperature=temperature).to_dict()
    head = TraceHeader(source="executor", policy=policy.to_dict(), workload=wl)
    trace = Trace(head, [], None)
    _, model = lat.prespec_parts_s(prof, batch, policy.k, policy.budget, _mean_context(trace))
    step = float(model) / policy.k + row_s * batch * policy.budget + off_s
    extra = {"draft_tree_mean_s": 2 * step, "draft_tree_depth_mean": 2.0}
    summary = RunSummary("ssd", "p", batch, temperature, 1, 1.0, 1, 1.0, 1.0, 0.0, 1.0, extra=extra)
    return Trace(head, [], summary)


def test_tree_sampling_cost_per_row_is_not_swayed_by_a_one_branch_tree(make_toy):
    """Sampling adds 80 us per branch row and step at T > 0. One-branch trees whose step the
    model over-predicts by 2 ms (loop 6's sparse k=8 traces) must not drag the fit down: the
    rows of the wide trees carry it (an unweighted median of these four falls below zero)."""
    from ssdsim.calibrate.ssd_costs import fit_tree_sample_row_s

    prof = make_toy()
    sparse = Policy(mode="ssd", k=4, fan_out=(0, 0, 0, 0, 1), fan_out_miss=(1, 0, 0, 0, 0))
    traces = [
        _tree_trace(prof, uniform_ssd(4, 3, "jit"), 1, 1.0, 80e-6, 0.0),
        _tree_trace(prof, uniform_ssd(4, 3, "fast"), 4, 1.0, 80e-6, 0.0),
        _tree_trace(prof, sparse, 1, 1.0, 80e-6, -2e-3),
        _tree_trace(prof, sparse, 1, 1.0, 80e-6, -2e-3),
        _tree_trace(prof, uniform_ssd(4, 3, "jit"), 2, 0.0, 0.0, 5e-3),  # greedy, no twin
    ]
    assert fit_tree_sample_row_s(prof, traces) == pytest.approx(80e-6, rel=1e-6)
    assert fit_tree_sample_row_s(prof, traces[2:]) == 0.0  # floored at zero
    assert fit_tree_sample_row_s(prof, traces[4:]) is None  # no trace at T > 0


def test_tree_sampling_cost_per_row_is_read_against_the_same_tree_greedy(make_toy):
    """Where a tree ran greedy too, sampling's cost is the difference of the two, not the
    excess over the greedy model: here the model misses both temperatures' steps by -400 us
    at B=4 (loop 18's B=4 trees), which the excess over the model would count as sampling's
    (80 us a row read as 73); the difference recovers 80 us. A tree that ran at T > 0 only
    does not count beside the pairs."""
    from ssdsim.calibrate.ssd_costs import fit_tree_sample_row_s

    prof = make_toy()
    pol = uniform_ssd(4, 3, "jit")
    off = -400e-6
    traces = [
        _tree_trace(prof, pol, 4, 1.0, 80e-6, off),
        _tree_trace(prof, pol, 4, 1.0, 80e-6, off),
        _tree_trace(prof, pol, 4, 0.0, 0.0, off),
        _tree_trace(prof, pol, 1, 1.0, 80e-6, 0.0),
        _tree_trace(prof, pol, 1, 0.0, 0.0, 0.0),
        _tree_trace(prof, uniform_ssd(2, 3, "jit"), 4, 1.0, 10e-6, 0.0),  # no greedy twin
    ]
    assert fit_tree_sample_row_s(prof, traces) == pytest.approx(80e-6, rel=1e-6)
    # without the greedy twins, the excess over the model: the B=4 trees read 80 - 400/60 us
    alone = fit_tree_sample_row_s(prof, traces[:2])
    assert alone == pytest.approx(80e-6 + off / 60, rel=1e-6)


def test_tree_scales_are_fitted_per_batch_and_branches(make_toy):
    """One-branch trees that run at half the modelled seconds beside 15-branch trees at 1.2x
    (B=1) and 0.9x (B=4): each (B, M) gets its own scale, and the calibrated tree grid prices
    each shape at its own (one scale for all priced a one-branch k=8 tree at twice its time)."""
    from ssdsim import ForwardLatency
    from ssdsim import latency as lat
    from ssdsim.calibrate.ssd_costs import _mean_context, fit_tree_scales
    from ssdsim.calibrate.trace_costs import scaled_by_cells
    from ssdsim.profile import LatencyGrid
    from ssdsim.trace import RunSummary, Trace, TraceHeader

    batch, branches, context = (1, 2, 4, 8), (1, 4, 8, 15, 32), (64, 256)
    seconds = [
        [[1e-4 + 2e-5 * b * m * (1 + c / 256) for c in context] for m in branches] for b in batch
    ]
    grid = LatencyGrid(batch, branches, context, seconds)
    prof = make_toy(draft_tree=ForwardLatency(fixed_s=1e-4, token_s=2e-5, grid=grid))
    sparse = Policy(mode="ssd", k=4, fan_out=(0, 0, 0, 0, 1), fan_out_miss=(1, 0, 0, 0, 0))
    wide = uniform_ssd(4, 3, "jit")

    def trace(policy: Policy, batch: int, scale: float, temperature: float = 0.0) -> Trace:
        wl = dataclasses.replace(WL, batch_size=batch, temperature=temperature).to_dict()
        head = TraceHeader(source="executor", policy=policy.to_dict(), workload=wl)
        ctx = _mean_context(Trace(head, [], None))
        glue, tree = lat.prespec_parts_s(prof, batch, policy.k, policy.budget, ctx)
        extra = {
            "draft_glue_mean_s": float(glue),
            "draft_tree_mean_s": float(tree) * 3 / 4 * scale,
            "draft_tree_depth_mean": 3.0,
        }
        summary = RunSummary("ssd", "p", batch, 0.0, 1, 1.0, 1, 1.0, 1.0, 0.0, 1.0, extra=extra)
        return Trace(head, [], summary)

    traces = [trace(sparse, 1, 0.5), trace(sparse, 1, 0.6), trace(wide, 1, 1.2)]
    traces += [trace(wide, 4, 0.9), trace(wide, 4, 3.0, temperature=1.0)]  # T > 0: not counted
    scales = fit_tree_scales(prof, traces)
    assert scales == pytest.approx({(1, 1): 0.55, (1, 15): 1.2, (4, 15): 0.9})
    fitted = dataclasses.replace(prof, draft_tree=scaled_by_cells(prof.draft_tree, scales))
    for policy, batch, scale in ((sparse, 1, 0.55), (wide, 1, 1.2), (wide, 4, 0.9)):
        before = lat.prespec_parts_s(prof, batch, 4, policy.budget, 80)[1]
        after = lat.prespec_parts_s(fitted, batch, 4, policy.budget, 80)[1]
        assert float(after) == pytest.approx(scale * float(before), rel=1e-6)


def test_glue_offset_is_fitted_apart_from_the_tree(make_toy):
    """Runs whose glue took a fixed 1.2 ms (B=1) and 1.5 ms (B=4) beyond the modelled forward,
    at two lookaheads, and whose trees ran at 0.9x the model: the glue's offset per batch size
    comes back, the tree's scale is 0.9 whatever the glue did (the old fit put the glue's excess
    into the tree's seconds per step), and the calibrated profile's glue carries the offset
    (linear in B between the fitted sizes) while an empty batch costs nothing."""
    from ssdsim import latency as lat
    from ssdsim.calibrate.ssd_costs import _mean_context, fit_prespec_glue, fit_tree_scales
    from ssdsim.trace import RunSummary, Trace, TraceHeader

    prof = make_toy()

    def trace(k: int, batch: int, glue_extra: float, temperature: float = 0.0) -> Trace:
        policy = uniform_ssd(k, 3, "fast")
        wl = dataclasses.replace(WL, batch_size=batch, temperature=temperature).to_dict()
        head = TraceHeader(source="executor", policy=policy.to_dict(), workload=wl)
        ctx = _mean_context(Trace(head, [], None))
        glue, tree = lat.prespec_parts_s(prof, batch, k, policy.budget, ctx)
        extra = {
            "draft_glue_mean_s": float(glue) + glue_extra,
            "draft_tree_mean_s": float(tree) * 0.9 * 3 / k,
            "draft_tree_depth_mean": 3.0,
        }
        summary = RunSummary("ssd", "p", batch, 0.0, 1, 1.0, 1, 1.0, 1.0, 0.0, 1.0, extra=extra)
        return Trace(head, [], summary)

    traces = [trace(4, 1, 1.2e-3), trace(8, 1, 1.1e-3), trace(8, 1, 1.3e-3, temperature=1.0)]
    traces += [trace(4, 4, 1.5e-3), trace(4, 4, 1.5e-3, temperature=1.0)]
    glue = fit_prespec_glue(prof, traces)
    assert glue == pytest.approx({1: 1.2e-3, 4: 1.5e-3})
    assert fit_tree_scales(prof, traces) == pytest.approx(
        {(1, 15): 0.9, (1, 27): 0.9, (4, 15): 0.9}
    )
    fitted = dataclasses.replace(prof, prespec_glue_s=glue)
    for batch, offset in ((1, 1.2e-3), (2, 1.3e-3), (4, 1.5e-3), (8, 1.5e-3)):
        bare = lat.prespec_parts_s(prof, batch, 4, 15, 80)
        with_glue = lat.prespec_parts_s(fitted, batch, 4, 15, 80)
        assert with_glue[0] == pytest.approx(bare[0] + offset, rel=1e-9)
        assert with_glue[1] == pytest.approx(bare[1], rel=1e-9)
    assert lat.prespec_parts_s(fitted, 0, 4, 15, 80)[0] == 0.0
    # fitting again on the fitted profile gives the same offsets (the model's glue is bare)
    assert fit_prespec_glue(fitted, traces) == pytest.approx(glue)
    # a profile round-trips it through JSON, and a bad table is named
    assert type(prof).from_dict(json.loads(json.dumps(fitted.to_dict()))).prespec_glue_s == glue
    with pytest.raises(Exception, match="prespec_glue_s"):
        dataclasses.replace(prof, prespec_glue_s={"0": 1e-3})
