"""``python -m executor.replay`` on the smoke pair, judged by real executor runs at T = 0.

The oracle is the executor itself (``ssdsim.replay.check_trace``): for every row of an SD, an
SSD jit and an SSD fast run, the replay must give the row's accepted length from its start
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
from ssdsim.replay import Replay, check_trace, load_replay
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


def _check(replay: Replay, trace) -> dict[str, int]:
    counts = check_trace(replay, trace)
    assert counts["text_wrong"] == 0
    wrong = {k: v for k, v in counts.items() if k.endswith("_wrong") and v}
    assert not wrong, (wrong, counts)
    return counts


def test_replay_texts_are_ar_greedy(smoke_build, smoke_prompts, smoke_replay, tmp_path):
    trace = _run(smoke_build, smoke_prompts, tmp_path, "--mode", "ar")
    _check(smoke_replay, trace)
    assert len(smoke_replay.sequences) == PROMPTS
    assert all(len(s.text) == NEW + 4 + 1 for s in smoke_replay.sequences)


def test_replay_gives_every_sd_row(smoke_build, smoke_prompts, smoke_replay, tmp_path):
    trace = _run(
        smoke_build, smoke_prompts, tmp_path, "--mode", "sd", "--k", "3", "--batch-size", "2"
    )
    assert _check(smoke_replay, trace)["rows"] > PROMPTS


@pytest.mark.parametrize("fallback", ["jit", "fast"])
def test_replay_gives_every_ssd_row_and_hit(
    smoke_cache, smoke_build, smoke_prompts, smoke_replay, tmp_path, fallback
):
    policy = Policy(
        mode="ssd", k=3, fan_out=(4, 2, 1, 1), fan_out_miss=(6, 1, 1, 0), fallback=fallback
    )
    path = policy.save(tmp_path / "policy.json")
    trace = _run(smoke_build, smoke_prompts, tmp_path, "--policy", str(path), "--devices", "cpu")
    counts = _check(smoke_replay, trace)
    hits = sum(bool(o.cache_hit) for s in trace.steps for o in s.seqs)
    assert counts["hits_checked"] > PROMPTS and hits > 0
    if fallback == "jit":  # misses too (the smoke pair's fast rows nearly always lead to hits)
        assert hits < counts["hits_checked"]


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

    assert _check(smoke_replay, trace)["hits_checked"] > 0
    monkeypatch.setattr(Replay, "row", broken)
    assert check_trace(smoke_replay, trace)["hit_wrong"] > 0


def test_bad_arguments_rejected(smoke_build, smoke_prompts, tmp_path, capsys):
    argv = ["--pair", str(smoke_build.pair_dir), "--prompts", str(smoke_prompts)]
    with pytest.raises(SystemExit):
        replay_cli.main([*argv, "--max-k", "0", "-o", str(tmp_path / "r.json")])
    assert "--max-k 0" in capsys.readouterr().err
    assert replay_cli.main([*argv, "--num-prompts", "99", "-o", str(tmp_path / "r.json")]) == 2
    assert "99" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
