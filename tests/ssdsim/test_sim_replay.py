"""Replay at T = 0 (``ssdsim.replay``): outcomes read off greedy texts instead of sampled.

Hand-made replays with known structure: the simulator's accepted lengths must follow the text
exactly (checked against a walk written here), hits must follow the bonus ranks with the rejected
proposal excluded, outcomes must not depend on the seed, and bad inputs fail before any work.
"""

from __future__ import annotations

import itertools

import pytest

from ssdsim import Policy, SchemaError, Workload, read_trace, uniform_ssd
from ssdsim.replay import Replay, ReplaySeq, RowOutcome, replay_from_dict
from ssdsim.simulator import simulate

OUT = 40
K = 4
PROMPT = 10


def make_replay(match, rank=lambda q: 2, fast=lambda q: (), seqs=3, length=OUT + K + 2):
    """Texts 100 + q; the draft's top 8 candidates at q hold the text at ``rank(q)`` (1 when
    ``match(q)``), fillers elsewhere; the n-gram speculator proposes ``fast(q)``."""
    out = []
    for _ in range(seqs):
        text = tuple(100 + q for q in range(length))
        top = []
        for q in range(length):
            r = 1 if match(q) else rank(q)
            fill = [1000 + 10 * q + i for i in range(8)]
            if r:
                fill.insert(r - 1, text[q])
            top.append(tuple(fill[:8]))
        out.append(
            ReplaySeq(PROMPT, text, tuple(top), tuple(tuple(fast(q)) for q in range(length)))
        )
    return Replay(tuple(out), max_k=8, depth=8, source="test")


def _wl(**kw):
    base = dict(batch_size=1, output_len_tokens=(OUT, OUT), prompt_len_tokens=(PROMPT, PROMPT))
    return Workload(**{**base, "num_prompts": 3, **kw})


def _steps(toy, policy, replay, tmp_path, **kw):
    path = tmp_path / "sim.jsonl"
    simulate(toy, policy, _wl(**kw), trace_path=path, replay=replay)
    by_seq: dict[int, list] = {}
    for s in read_trace(path).steps:
        for o in s.seqs:
            by_seq.setdefault(o.seq, []).append(o)
    return by_seq


def test_row_reads_the_text():
    r = make_replay(
        lambda q: q % 3 != 0, rank=lambda q: 3, fast=lambda q: (100 + q, 100 + q + 1, 7)
    )
    # from 1: positions 1, 2 match, 3 does not -> A = 2; bonus text[3] is 3rd, 2nd without the
    # rejected top candidate
    assert r.row(0, 1, 4, "draft") == RowOutcome(proposed=4, accepted=2, rank=2)
    # all 2 proposals accepted: nothing excluded, the bonus text[6] ranks 3rd
    assert (r.row(0, 4, 2, "draft").accepted, r.row(0, 4, 2, "draft").rank) == (2, 3)
    # the fast speculator's first two proposals are the text, its third (7) is not: the draft's
    # top candidate at the bonus stays in, so the text there keeps its rank (1 where it matches)
    fast = r.row(0, 4, 4, "fast")
    assert (fast.proposed, fast.accepted, fast.rank) == (3, 2, 3)
    assert r.row(0, 1, 4, "fast") == RowOutcome(proposed=3, accepted=2, rank=3)
    # beyond the recorded candidates: rank 0 (a miss)
    deep = make_replay(lambda q: False, rank=lambda q: 0)
    assert deep.row(0, 1, 4, "draft").rank == 0


def test_sd_accepted_lengths_follow_the_text(toy, tmp_path):
    every = 3  # the draft misses every third position
    by_seq = _steps(toy, Policy(mode="sd", k=K), make_replay(lambda q: q % every), tmp_path)
    for rows in by_seq.values():
        pos, want = 1, []
        for _ in rows:
            a = 0
            while a < K and (pos + a) % every:
                a += 1
            want.append(a)
            pos += a + 1
        assert [o.accepted_len for o in rows] == want


def test_ssd_hits_follow_the_bonus_ranks(toy, tmp_path):
    # the draft is always right: every row after the first accepts all k and hits (rank 1)
    rows = _steps(toy, uniform_ssd(K, 1), make_replay(lambda q: True), tmp_path)
    for seq in rows.values():
        assert not seq[0].cache_hit and all(o.cache_hit for o in seq[1:])
        assert all(o.accepted_len == o.proposed for o in seq)
    # no branch for the bonus after all k: never a hit
    none = Policy(mode="ssd", k=K, fan_out=(1, 1, 1, 1, 0), fan_out_miss=(1, 1, 1, 1, 0))
    rows = _steps(toy, none, make_replay(lambda q: True), tmp_path)
    assert not any(o.cache_hit for seq in rows.values() for o in seq)


def test_the_rejected_proposal_is_excluded_from_the_rank(toy, tmp_path):
    # a rejection every 3rd position, the text 2nd among the draft's candidates there: 1st once
    # the rejected top one is out, so one branch per index catches every bonus
    one = Policy(mode="ssd", k=K, fan_out=(1,) * (K + 1), fan_out_miss=(1,) * (K + 1))
    rows = _steps(toy, one, make_replay(lambda q: q % 3, rank=lambda q: 2), tmp_path)
    assert all(o.cache_hit for seq in rows.values() for o in seq[1:])
    # ranked 3rd there: 2nd without the rejected one, beyond one branch: no row after a
    # rejection hits
    rows = _steps(toy, one, make_replay(lambda q: q % 3, rank=lambda q: 3), tmp_path)
    for seq in rows.values():
        for before, o in itertools.pairwise(seq):
            assert o.cache_hit == (before.accepted_len == before.proposed)


def test_fast_rows_replay_the_ngram_proposals(toy, tmp_path):
    # the draft never right (rank 9: beyond 8 candidates, every request misses); the n-gram
    # speculator proposes the next two tokens of the text, then a wrong one
    replay = make_replay(lambda q: False, rank=lambda q: 0, fast=lambda q: (100 + q, 101 + q, 5))
    rows = _steps(toy, uniform_ssd(K, 2, fallback="fast"), replay, tmp_path)
    for seq in rows.values():
        assert not any(o.cache_hit for o in seq)
        assert all(o.accepted_len == 2 for o in seq[:-1])


def test_more_sequences_than_texts_cycle_them(toy, tmp_path):
    """A workload cycles its prompt set; sequence 3 of 5 replays text 0, as its prompt is 0's."""
    replay = make_replay(lambda q: q % 3, rank=lambda q: 2)
    rows = _steps(toy, uniform_ssd(K, 1), replay, tmp_path, num_prompts=5)
    assert len(rows) == 5
    assert [o.accepted_len for o in rows[3]] == [o.accepted_len for o in rows[0]]


def test_outcomes_do_not_depend_on_the_seed(toy):
    replay = make_replay(lambda q: q % 4, rank=lambda q: 2)
    a = simulate(toy, uniform_ssd(K, 2), _wl(seed=0), replay=replay)
    b = simulate(toy, uniform_ssd(K, 2), _wl(seed=7), replay=replay)
    assert a.tokens_per_step == b.tokens_per_step and a.hit_rate == b.hit_rate


def test_bad_replays_rejected(toy):
    replay = make_replay(lambda q: True)
    with pytest.raises(SchemaError, match="temperature=1"):
        simulate(toy, uniform_ssd(K, 2), _wl(temperature=1.0), replay=replay)
    with pytest.raises(SchemaError, match="expected at least output length"):
        simulate(toy, uniform_ssd(K, 2), _wl(), replay=make_replay(lambda q: True, length=OUT))
    with pytest.raises(SchemaError, match="prompt lengths"):
        simulate(toy, uniform_ssd(K, 2), _wl(prompt_len_tokens=(12, 12)), replay=replay)
    with pytest.raises(SchemaError, match="kind"):
        replay_from_dict({"kind": "trace"})
    one = {"prompt_len": 3, "text": [1], "draft_top": [[1]], "fast": [[]]}
    with pytest.raises(SchemaError, match="max_k got None"):
        replay_from_dict({"kind": "text_replay", "schema_version": 1, "sequences": [one]})
    with pytest.raises(SchemaError, match="one entry per position"):
        replay_from_dict(
            {
                "kind": "text_replay",
                "schema_version": 1,
                "max_k": 4,
                "depth": 8,
                "sequences": [{"prompt_len": 3, "text": [1, 2], "draft_top": [[1]], "fast": [[]]}],
            }
        )
