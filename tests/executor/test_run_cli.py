"""``python -m executor.run`` on the smoke pair: bad input rejected before any model loads; a run
prints JSON, writes a trace, and SD's outputs equal AR's."""

from __future__ import annotations

import json

import pytest

import executor.run as run_cli
from ssdsim.trace import read_trace


@pytest.fixture
def no_loading(monkeypatch):
    monkeypatch.setattr(
        run_cli.Decoder, "from_dir", lambda *a, **k: pytest.fail("a model was loaded")
    )


def _args(pair, prompts, *extra):
    return [
        "--mode",
        "sd",
        "--pair",
        str(pair),
        "--prompts",
        str(prompts),
        "--max-new-tokens",
        "12",
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch-size", "0"], "--batch-size 0: expected an integer >= 1"),
        (["--k", "0"], "--k 0: expected an integer >= 1"),
        (["--temperature", "-1"], "temperatures must be >= 0"),
        (["--device", "tpu9"], "--device 'tpu9'"),
        (["--num-prompts", "9"], "--num-prompts 9 but the set holds 8"),
    ],
)
def test_bad_arguments_rejected_before_loading(
    smoke_build, smoke_prompts, no_loading, capsys, extra, message
):
    assert run_cli.main(_args(smoke_build.pair_dir, smoke_prompts, *extra)) == 2
    assert message in capsys.readouterr().err


def test_bad_pair_and_prompts_rejected_before_loading(
    smoke_build, smoke_prompts, tmp_path, no_loading, capsys
):
    assert run_cli.main(_args(tmp_path / "nothing", smoke_prompts)) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run_cli.main(_args(smoke_build.pair_dir, tmp_path / "missing.jsonl")) == 2
    assert "does not exist" in capsys.readouterr().err
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"prompt_ids": [1, 5000]}) + "\n")
    assert run_cli.main(_args(smoke_build.pair_dir, big)) == 2
    assert "token ids [5000] >= the vocabulary size 512" in capsys.readouterr().err
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(json.dumps({"prompt_ids": [1, 2], "pair": "other"}) + "\n")
    assert run_cli.main(_args(smoke_build.pair_dir, foreign)) == 2
    assert "no text to re-tokenize" in capsys.readouterr().err


def test_sd_run_prints_json_and_writes_trace(smoke_cache, tmp_path, capsys):
    trace = tmp_path / "trace.jsonl"
    args = _args(
        "smoke",
        "smoke8",
        "--batch-size",
        "4",
        "--k",
        "3",
        "--num-prompts",
        "6",
        "--json",
        "--trace",
        str(trace),
        "--speed-probe",
    )
    assert run_cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    probe = out["speed_probe"]  # target forwards timed around the decode, in report and trace
    assert probe["forwards"] == 96 and 0 < probe["target_forward_s"] < 1
    assert probe["target_forward_s"] == pytest.approx((probe["before_s"] + probe["after_s"]) / 2)
    marks = probe["marks"]  # and between the batches (6 prompts, 4 at a time: one between)
    assert [m["target_forward_s"] for m in (marks[0], marks[-1])] == [
        probe["before_s"],
        probe["after_s"],
    ]
    assert len(marks) == 3 and 0 < marks[1]["target_forward_s"] < 1
    assert marks[0]["clock_s"] == 0 < marks[1]["clock_s"] < marks[2]["clock_s"]
    for key in (
        "tokens_per_s",
        "batch_tokens_per_s",
        "mean_accepted_len",
        "tokens_per_step",
        "outputs",
    ):
        assert key in out
    assert len(out["outputs"]) == 6 and all(len(o) == 12 for o in out["outputs"])
    assert 0 <= out["mean_accepted_len"] <= 3
    assert (
        run_cli.main(
            [
                "--mode",
                "ar",
                "--pair",
                "smoke",
                "--prompts",
                "smoke8",
                "--num-prompts",
                "6",
                "--max-new-tokens",
                "12",
                "--json",
            ]
        )
        == 0
    )
    plain = json.loads(capsys.readouterr().out)
    assert plain["outputs"] == out["outputs"] and "speed_probe" not in plain
    t = read_trace(trace)
    assert t.header.policy["mode"] == "sd" and t.header.workload["batch_size"] == 4
    assert t.header.devices["speed_probe"] == probe
    assert marks[2]["clock_s"] == t.steps[-1].t_end_s  # the decode clock's end
    seqs = [{o.seq for o in s.seqs} for s in t.steps]  # the mark falls between the batches
    split = [s.t_start_s < marks[1]["clock_s"] for s in t.steps]
    assert any(split) and not all(split)
    assert all(max(q) < 4 if first else min(q) >= 4 for q, first in zip(seqs, split, strict=True))
    assert t.summary.tokens_per_step == pytest.approx(out["tokens_per_step"])
    assert (
        sum(o.emitted_tokens for s in t.steps for o in s.seqs) == 6 * 11
    )  # the first token comes from prefill


def test_text_prompts_are_tokenized_and_summary_printed(smoke_build, tmp_path, capsys):
    text = tmp_path / "text.jsonl"
    text.write_text(json.dumps({"prompt": "def add(a, b):\n    return"}) + "\n")
    assert run_cli.main(_args(smoke_build.pair_dir, text, "--mode", "ar")) == 0
    printed = capsys.readouterr().out
    assert "tokens/s per sequence" in printed and "mean accepted length" in printed
