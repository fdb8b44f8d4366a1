"""``python -m executor.replay`` on the smoke pair, judged by real executor runs at T = 0.

The oracle is the executor itself: for every row of an SD, an SSD jit and an SSD fast run, the
replay (``ssdsim.replay.Replay.row``) must give the row's accepted length from its start
position and proposal count, and the row after it must hit exactly when the replayed bonus rank
is within the row's fan-out. The replayed texts must equal the emitted ones. A replay that
forgets to exclude the rejected proposal from the bonus's rank is caught.
"""

from __future__ import annotations

import dataclasses

import pytest

import executor.replay as replay_cli
import executor.run as run_cli
from ssdsim.policy import Policy
from ssdsim.replay import Replay, load_replay
from ssdsim.trace import read_trace

NEW = 24
PROMPTS = 4


@pytest.fixture(scope="module")
def smoke_replay(smoke_build, smoke_prompts, tmp_path_factory):
    out = tmp_path_factory.mktemp("replay") / "replay.json"
    argv = ["--pair", str(smoke_build.pair_dir), "--prompts", str(smoke_prompts)]
    argv += ["--num-prompts", str(PROMPTS), "--max-new-tokens", str(NEW), "--max-k", "4"]
    assert replay_cli.main([*argv, "-o", str(out)]) == 0
    return load_replay(out)


def _run(smoke_build, smoke_prompts, tmp_path, *args):
    trace = tmp_path / "run.jsonl"
    argv = ["--pair", str(smoke_build.pair_dir), "--prompts", str(smoke_prompts)]
    argv += ["--num-prompts", str(PROMPTS), "--max-new-tokens", str(NEW), "--temperature", "0"]
    assert run_cli.main([*argv, "--trace", str(trace), *args]) == 0
    return read_trace(trace)


def _walk(replay: Replay, trace, policy: Policy) -> tuple[int, int]:
    """Check every row of a trace against the replay; returns (rows, hit rows) checked."""
    pos: dict[int, int] = {}
    expect_hit: dict[int, bool] = {}
    rows = hits = 0
    for step in trace.steps:
        for o in step.seqs:
            at = pos.get(o.seq, 1)  # the prefill emitted text[0]
            seq = replay.sequences[o.seq]
            assert list(o.token_ids) == list(seq.text[at : at + o.emitted_tokens])
            if policy.mode == "ar":
                pos[o.seq] = at + o.emitted_tokens
                continue
            if policy.mode == "ssd" and o.seq in expect_hit:
                assert o.cache_hit == expect_hit[o.seq], (o.seq, at, step.step)
            # a fast row asks for k proposals (it may find fewer, or none: proposer "none")
            fast = policy.mode == "ssd" and not o.cache_hit and o.proposer in ("fast", "none")
            proposer, n = ("fast", policy.k) if fast else ("draft", o.proposed)
            got = replay.row(o.seq, at, n, proposer)
            assert got.accepted == o.accepted_len, (o.seq, at, step.step)
            assert got.proposed == o.proposed, (o.seq, at, step.step)
            if policy.mode == "ssd":
                fans = policy.fan_out if o.cache_hit else policy.fan_out_miss
                expect_hit[o.seq] = 0 < got.rank <= fans[got.accepted]
                hits += int(bool(o.cache_hit))
            pos[o.seq] = at + o.emitted_tokens
            rows += 1
    return rows, hits


def test_replay_texts_are_ar_greedy(smoke_build, smoke_prompts, smoke_replay, tmp_path):
    trace = _run(smoke_build, smoke_prompts, tmp_path, "--mode", "ar")
    _walk(smoke_replay, trace, Policy(mode="ar"))
    assert len(smoke_replay.sequences) == PROMPTS
    assert all(len(s.text) == NEW + 4 + 1 for s in smoke_replay.sequences)


def test_replay_gives_every_sd_row(smoke_build, smoke_prompts, smoke_replay, tmp_path):
    trace = _run(
        smoke_build, smoke_prompts, tmp_path, "--mode", "sd", "--k", "3", "--batch-size", "2"
    )
    rows, _ = _walk(smoke_replay, trace, Policy(mode="sd", k=3))
    assert rows > PROMPTS


@pytest.mark.parametrize("fallback", ["jit", "fast"])
def test_replay_gives_every_ssd_row_and_hit(
    smoke_cache, smoke_build, smoke_prompts, smoke_replay, tmp_path, fallback
):
    policy = Policy(
        mode="ssd", k=3, fan_out=(4, 2, 1, 1), fan_out_miss=(6, 1, 1, 0), fallback=fallback
    )
    path = policy.save(tmp_path / "policy.json")
    trace = _run(smoke_build, smoke_prompts, tmp_path, "--policy", str(path), "--devices", "cpu")
    rows, hits = _walk(smoke_replay, trace, policy)
    assert rows > PROMPTS and hits > 0  # the hit check ran on both outcomes


def test_a_replay_without_the_exclusion_is_caught(
    smoke_cache, smoke_build, smoke_prompts, smoke_replay, tmp_path, monkeypatch
):
    """Ranking the bonus with the rejected proposal left in shifts ranks by one: some hit or
    miss comes out wrong."""
    policy = Policy(mode="ssd", k=3, fan_out=(1, 1, 1, 1), fan_out_miss=(1, 1, 1, 1))
    path = policy.save(tmp_path / "policy.json")
    trace = _run(smoke_build, smoke_prompts, tmp_path, "--policy", str(path), "--devices", "cpu")
    right = Replay.row

    def broken(self, seq, pos, n, proposer):
        out = right(self, seq, pos, n, proposer)
        return dataclasses.replace(
            out, rank=out.rank + 1 if out.accepted < out.proposed else out.rank
        )

    monkeypatch.setattr(Replay, "row", broken)
    with pytest.raises(AssertionError):
        _walk(smoke_replay, trace, policy)


def test_bad_arguments_rejected(smoke_build, smoke_prompts, tmp_path, capsys):
    argv = ["--pair", str(smoke_build.pair_dir), "--prompts", str(smoke_prompts)]
    with pytest.raises(SystemExit):
        replay_cli.main([*argv, "--max-k", "0", "-o", str(tmp_path / "r.json")])
    assert "--max-k 0" in capsys.readouterr().err
    assert replay_cli.main([*argv, "--num-prompts", "99", "-o", str(tmp_path / "r.json")]) == 2
    assert "99" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
