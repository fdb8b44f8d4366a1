"""The fast speculator's rows by the row before them: a sequence's first step, a fast row whose
k proposals were all accepted, one with a rejection, or a draft row (``ChancePoint.alpha_fast_first``,
``_full``, ``_part``, ``_draft``).

Round trip: a truth with both tables, traced by the simulator, calibrated: the tables come back,
and a wrong table (the contexts ignored) is told apart by the traced rows themselves."""

from __future__ import annotations

import dataclasses
import json
import statistics

import pytest

from ssdsim import ChancePoint, Coverage, Policy, Workload, read_trace
from ssdsim.calibrate import calibrate
from ssdsim.simulator import simulate

K = 4
SPARSE = Policy(
    mode="ssd", k=K, fan_out=(0, 0, 0, 0, 1), fan_out_miss=(1, 0, 0, 0, 0), fallback="fast"
)
WL = Workload(batch_size=1, output_len_tokens=400, prompt_len_tokens=50, num_prompts=24)


def _point(**fields) -> ChancePoint:
    base = dict(
        temperature=0.0,
        rescale=1.0,
        alpha=(0.7,),
        alpha_fast=(0.5, 0.8),
        coverage=Coverage(beta_reject=(0.6,), r=0.6, beta_bonus=0.5, r_bonus=0.8),
        run_alpha_hit=(0.7, 0.8),
        run_alpha_jit=(0.7, 0.8),
    )
    return ChancePoint(**{**base, **fields})


def _with(profile, point):
    return dataclasses.replace(profile, chance=dataclasses.replace(profile.chance, points=(point,)))


def _fast_rows_by_before(path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {"first": [], "full": [], "part": [], "draft": []}
    before: dict[int, str] = {}
    for step in read_trace(path).steps:
        for o in step.seqs:
            if o.proposer == "fast":
                out[before.get(o.seq, "first")].append(o.accepted_len)
                before[o.seq] = "full" if o.accepted_len >= K else "part"
            else:
                before[o.seq] = "draft"
    return out


def test_fast_context_tables_round_trip(make_toy, tmp_path):
    truth = _with(
        make_toy(),
        _point(
            alpha_fast_first=(0.1,),
            alpha_fast_full=(0.97, 0.95),
            alpha_fast_part=(0.3,),
            alpha_fast_draft=(0.6, 0.9),
        ),
    )
    path = tmp_path / "t.jsonl"
    simulate(truth, SPARSE, WL, trace_path=path)
    rows = _fast_rows_by_before(path)
    assert len(rows["first"]) == WL.num_prompts and len(rows["full"]) > 100
    # the simulator follows each table in its context
    means = {c: statistics.fmean(v) for c, v in rows.items()}
    assert means["full"] > 3.0 > means["draft"] > 1.0 > means["part"] > means["first"]
    (fit,) = calibrate([str(path)], base=make_toy()).points
    assert fit.point.alpha_fast_full[:2] == pytest.approx((0.97, 0.95), abs=0.03)
    # 24 first rows: fewer than the 20 needed at the second position, so they pool
    assert fit.point.alpha_fast_first[0] == pytest.approx(0.1, abs=0.1)
    assert fit.point.alpha_fast_part[0] == pytest.approx(0.3, abs=0.06)
    assert fit.point.alpha_fast_draft[:2] == pytest.approx((0.6, 0.9), abs=0.05)
    # after a draft row the rank table (fitted from those rows alone) holds the first proposal
    assert fit.point.alpha_fast_rank[0] == pytest.approx(0.6, abs=0.06)
    # the contexts' own tables, not a pooled rate: without them, full rows accept less
    plain_path = tmp_path / "plain.jsonl"
    simulate(_with(make_toy(), _point()), SPARSE, WL, trace_path=plain_path)
    plain = _fast_rows_by_before(plain_path)
    assert statistics.fmean(plain["full"]) < statistics.fmean(rows["full"]) - 0.5


def test_without_fast_rows_the_tables_stay_empty_and_change_nothing(make_toy, tmp_path):
    jit = Policy(mode="ssd", k=K, fan_out=(2,) * (K + 1), fan_out_miss=(2,) * (K + 1))
    path = tmp_path / "jit.jsonl"
    simulate(_with(make_toy(), _point()), jit, WL, trace_path=path)
    (fit,) = calibrate([str(path)], base=make_toy()).points
    assert fit.point.alpha_fast_first == () and fit.point.alpha_fast_full == ()
    with_tables = _with(make_toy(), _point(alpha_fast_first=(0.1,), alpha_fast_full=(0.97,)))
    assert simulate(with_tables, jit, WL) == simulate(_with(make_toy(), _point()), jit, WL)


def test_fast_context_fields_are_checked():
    with pytest.raises(ValueError, match="alpha_fast_full"):
        _point(alpha_fast_full=(1.2,))


def test_fast_rows_by_the_rank_before_round_trip_and_predict_a_wider_tree(make_toy, tmp_path):
    """Truth: after the draft's miss at rank 1 the fast speculator's row soon fails, after a
    deep rank it copies whole rows. Traced at a narrow tree (misses at every rank where F = 0),
    calibrated: the rows come back by bucket, and a wider tree (misses only beyond rank 2) is
    predicted from them; the first rate by rank with pooled later positions under-predicts it."""
    toy = make_toy()
    rows = ((0.4, 0.3), (0.6, 0.6), (0.9, 0.98))  # rank 1, 2-3, 4 on
    truth = _with(toy, _point(alpha_fast_draft_rank=rows, alpha_fast_draft=(0.6, 0.5)))
    wl = Workload(batch_size=1, output_len_tokens=400, prompt_len_tokens=50, num_prompts=32)
    narrow = Policy(
        mode="ssd", k=K, fan_out=(0, 1, 1, 0, 2), fan_out_miss=(0, 1, 1, 0, 2), fallback="fast"
    )
    path = tmp_path / "narrow.jsonl"
    simulate(truth, narrow, wl, trace_path=path)
    (fit,) = calibrate([str(path)], base=toy).points
    got = fit.point.alpha_fast_draft_rank
    assert len(got) >= 3
    assert got[0][:2] == pytest.approx(rows[0], abs=0.1)
    assert got[1][:2] == pytest.approx(rows[1], abs=0.06)
    assert all(r[:2] == pytest.approx(rows[2], abs=0.1) for r in got[2:])  # deeper: as 4 on

    wide = Policy(
        mode="ssd", k=K, fan_out=(2,) * (K + 1), fan_out_miss=(2,) * (K + 1), fallback="fast"
    )
    want = simulate(truth, wide, wl).tokens_per_step
    assert simulate(_with(toy, fit.point), wide, wl).tokens_per_step == pytest.approx(
        want, rel=0.02
    )  # 0.9% off when written
    pooled = _with(toy, dataclasses.replace(fit.point, alpha_fast_draft_rank=()))
    assert simulate(pooled, wide, wl).tokens_per_step < want * 0.98  # 3.2% under when written


def test_fast_rank_rows_are_checked():
    with pytest.raises(ValueError, match=r"alpha_fast_draft_rank\[1\]"):
        _point(alpha_fast_draft_rank=((0.5,), (1.5, 0.2)))
    with pytest.raises(ValueError, match="alpha_fast_draft_rank"):
        _point(alpha_fast_draft_rank=0.5)


def _as_no_match(src, dst) -> None:
    """The trace with every fast row that accepted nothing turned into one that found no n-gram
    match (proposer none, nothing proposed), as the executor records it."""
    lines = src.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        rec = json.loads(line)
        for o in rec.get("seqs", []):
            if o["proposer"] == "fast" and o["accepted_len"] == 0:
                o["proposer"], o["proposed"] = "none", 0
        out.append(json.dumps(rec))
    dst.write_text("\n".join(out) + "\n")


def test_rows_with_no_match_are_a_context_and_a_share(make_toy, tmp_path):
    """Rows that found no n-gram match count as rejected at once, and as the context of the row
    after them (``alpha_fast_nomatch``) with the share of each context's zero rows that had no
    match (``fast_nomatch``; here every one)."""
    truth = _with(make_toy(), _point(alpha_fast_part=(0.3,), alpha_fast_full=(0.97,)))
    sim, path = tmp_path / "sim.jsonl", tmp_path / "nomatch.jsonl"
    simulate(truth, SPARSE, WL, trace_path=sim)
    _as_no_match(sim, path)
    after: list[int] = []  # accepted lengths of fast rows right after a no-match row
    last: dict[int, str] = {}
    for step in read_trace(path).steps:
        for o in step.seqs:
            if o.cache_hit is False and last.get(o.seq) == "none":
                after.append(o.accepted_len)
            last[o.seq] = o.proposer
    assert len(after) > 50
    (fit,) = calibrate([str(path)], base=make_toy()).points
    p = fit.point
    assert p.fast_nomatch and all(v == pytest.approx(1.0) for v in p.fast_nomatch)
    assert p.alpha_fast_nomatch[0] == pytest.approx(statistics.fmean(a > 0 for a in after))
    # the simulated trace itself never proposes nothing: no share, no context
    (plain,) = calibrate([str(sim)], base=make_toy()).points
    assert plain.point.fast_nomatch == () and plain.point.alpha_fast_nomatch == ()


def test_no_match_runs_slow_a_policy_of_fast_rows(make_toy):
    """After a row with no match, nothing is accepted (a run of new text): with the share set,
    the simulator stays in such runs and a policy of fast rows makes fewer tokens per step;
    without it (or with a share of 0) it is the part table's, as before."""
    tables = dict(alpha_fast_part=(0.5,), alpha_fast_full=(0.95,), alpha_fast_nomatch=(0.02,))
    base = _with(make_toy(), _point(**tables))
    sticky = _with(make_toy(), _point(**tables, fast_nomatch=(1.0,) * 5))
    never = _with(make_toy(), _point(**tables, fast_nomatch=(0.0,) * 5))
    fast_rows = Policy(  # the trees wait for full rows: a row that accepts nothing misses again
        mode="ssd", k=K, fan_out=(0, 0, 0, 0, 1), fan_out_miss=(0, 0, 0, 0, 1), fallback="fast"
    )
    assert simulate(never, fast_rows, WL) == simulate(base, fast_rows, WL)
    plain = simulate(base, fast_rows, WL).tokens_per_step
    assert simulate(sticky, fast_rows, WL).tokens_per_step < 0.8 * plain


def test_no_match_shares_are_checked():
    with pytest.raises(ValueError, match="fast_nomatch"):
        _point(fast_nomatch=(0.5, 0.5))
    with pytest.raises(ValueError, match="fast_nomatch"):
        _point(fast_nomatch=(0.5, 0.5, 0.5, 0.5, 1.5))
