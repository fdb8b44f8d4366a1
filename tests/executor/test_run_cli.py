"""``python -m executor.run``: bad input rejected before any model loads; a run prints JSON and writes a trace."""

from __future__ import annotations

import json

import pytest

import executor.run as run_cli
from ssdsim.trace import read_trace
from tests.executor.helpers import save_perturbed_copy, save_random_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    target = save_random_model(root / "pair" / "target", "llama", seed=31, init_std=0.3)
    save_perturbed_copy(target, root / "pair" / "draft", noise=0.03)
    prompts = root / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"prompt_ids": [5 + i, 7, 9 + i]}) + "\n" for i in range(6))
    )
    return root / "pair", prompts


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
        (["--num-prompts", "7"], "--num-prompts 7 but the set holds 6"),
    ],
)
def test_bad_arguments_rejected_before_loading(setup, monkeypatch, capsys, extra, message):
    monkeypatch.setattr(
        run_cli.Decoder, "from_dir", lambda *a, **k: pytest.fail("a model was loaded")
    )
    assert run_cli.main(_args(*setup, *extra)) == 2
    assert message in capsys.readouterr().err


def test_bad_pair_and_prompts_rejected(setup, tmp_path, monkeypatch, capsys):
    pair, prompts = setup
    monkeypatch.setattr(
        run_cli.Decoder, "from_dir", lambda *a, **k: pytest.fail("a model was loaded")
    )
    assert run_cli.main(_args(tmp_path / "nothing", prompts)) == 2
    assert "has no config.json" in capsys.readouterr().err
    assert run_cli.main(_args(pair, tmp_path / "missing.jsonl")) == 2
    assert "does not exist" in capsys.readouterr().err
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"prompt_ids": [1, 500]}) + "\n")
    assert run_cli.main(_args(pair, big)) == 2
    assert "token ids [500] >= the vocabulary size 96" in capsys.readouterr().err


def test_sd_run_prints_json_and_writes_trace(setup, tmp_path, capsys):
    pair, prompts = setup
    trace = tmp_path / "trace.jsonl"
    assert (
        run_cli.main(
            _args(pair, prompts, "--batch-size", "4", "--k", "3", "--json", "--trace", str(trace))
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    for key in (
        "tokens_per_s",
        "batch_tokens_per_s",
        "mean_accepted_len",
        "tokens_per_step",
        "outputs",
    ):
        assert key in out
    assert len(out["outputs"]) == 6 and all(len(o) == 12 for o in out["outputs"])
    assert (
        run_cli.main(
            [
                "--mode",
                "ar",
                "--pair",
                str(pair),
                "--prompts",
                str(prompts),
                "--max-new-tokens",
                "12",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["outputs"] == out["outputs"]
    t = read_trace(trace)
    assert t.header.policy["mode"] == "sd" and t.header.workload["batch_size"] == 4
    assert t.summary.tokens_per_step == pytest.approx(out["tokens_per_step"])
    assert (
        sum(o.emitted_tokens for s in t.steps for o in s.seqs) == 6 * 11
    )  # first token comes from prefill


def test_text_summary(setup, capsys):
    assert run_cli.main(_args(*setup, "--mode", "ar")) == 0
    text = capsys.readouterr().out
    assert "tokens/s per sequence" in text and "mean accepted length" in text
