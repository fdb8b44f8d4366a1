"""The CLI: bad input fails before any study starts; a run writes policy.json, summary.json and figures."""

from __future__ import annotations

import argparse
import json

import pytest

from ssdsim import Policy, Workload
from ssdsim.optimize.cli import (
    DEFAULT_OUT,
    DEFAULT_PROFILE,
    K_MAX,
    build_parser,
    check_inputs,
    default_k_max,
    main,
    parse_bytes,
)
from ssdsim.profile import load_profile

PROFILE = "paper-llama70b-h100"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SSDSIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_defaults_are_the_embedded_default():
    args = build_parser().parse_args([])
    assert args.profile == DEFAULT_PROFILE == "embedded-cpu-calibrated"
    assert args.k_max is None  # resolved from the profile (default_k_max)
    assert args.batch_size is None and args.temperature is None  # the workload's: B=1, T=0
    assert Workload().batch_size == 1 and Workload().temperature == 0
    assert args.out == DEFAULT_OUT and args.storage is None


def test_k_max_defaults_to_what_a_calibrated_profile_measured():
    calibrated = load_profile("embedded-cpu-calibrated")
    assert default_k_max(calibrated) == len(calibrated.chance.alpha) < K_MAX
    assert default_k_max(load_profile(PROFILE)) == K_MAX  # a preset from public figures
    _, settings = check_inputs(build_parser().parse_args([]))
    assert settings.k_max == len(calibrated.chance.alpha)
    _, settings = check_inputs(build_parser().parse_args(["--k-max", "12"]))
    assert settings.k_max == 12


@pytest.mark.parametrize(
    "text, expected", [("1024", 1024), ("8GiB", 8 * 2**30), ("512MB", 512 * 10**6), ("2k", 2000)]
)
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "-5", "0", "8XB"])
def test_parse_bytes_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError, match="bytes"):
        parse_bytes(text)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--profile", "no-such-profile"], "no-such-profile"),
        (["--batch-size", "0"], "--batch-size"),
        (["--temperature", "-1"], "--temperature"),
        (["--batch-sizes", "1,x"], "--batch-sizes"),
        (["--temperatures", "0,-0.5"], "--temperatures"),
        (["--batch-size", "2", "--batch-sizes", "1,2"], "give one of them"),
        (["--fallbacks", "jit,slow"], "--fallbacks"),
        (["--cache-memory", "lots"], "--cache-memory"),
        (["--n-trials", "0"], "--n-trials"),
        (["--workload", "missing.json"], "missing.json"),
        (["--storage", "ftp://host/x"], "--storage"),
        (["--batch-sizes", "1,2", "--study", "x"], "--study"),
    ],
)
def test_bad_input_fails_before_any_study(argv, message, cache, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["--profile", PROFILE, *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (cache / "studies").exists() and not (tmp_path / "out").exists()


def test_bad_workload_file_names_the_field(tmp_path, cache, capsys):
    bad = tmp_path / "w.json"
    bad.write_text(json.dumps({"batch_size": 1, "output_len": 5}))
    with pytest.raises(SystemExit):
        main(["--profile", PROFILE, "--workload", str(bad)])
    assert "output_len" in capsys.readouterr().err


def test_out_must_be_a_directory(tmp_path, cache, capsys):
    (tmp_path / "f").write_text("x")
    with pytest.raises(SystemExit):
        main(["--profile", PROFILE, "--out", str(tmp_path / "f")])
    assert "not a directory" in capsys.readouterr().err


def test_run_writes_policy_summary_and_figures(tmp_path, cache, capsys):
    out = tmp_path / "out"
    argv = [
        "--profile",
        PROFILE,
        "--batch-size",
        "2",
        "--temperature",
        "0.7",
        "--n-trials",
        "40",
        "--out",
        str(out),
    ]
    assert main([*argv, "--quiet", "--top-n", "2", "--reeval-seeds", "2"]) == 0
    table = capsys.readouterr().out
    assert "best" in table and "AR" in table and "best SD" in table and "paper default SSD" in table
    summary = json.loads((out / "summary.json").read_text())
    best, base = summary["best"], summary["baselines"]
    assert set(base) == {"ar", "sd", "paper_default"}
    assert all(e["tokens_per_s"] > 0 for e in (best, *base.values()))
    assert best["tokens_per_s"] >= max(
        e["tokens_per_s"] for e in base.values()
    )  # baselines are candidates too
    assert best["speedup_vs_ar"] == pytest.approx(best["tokens_per_s"] / base["ar"]["tokens_per_s"])
    assert Policy.load(out / "policy.json").to_dict() == best["policy"]
    cands = summary["candidates"]  # the shortlist: best first, no label twice, AR among them
    assert cands[0]["label"] == best["label"] and len({c["label"] for c in cands}) == len(cands)
    rates = [c["tokens_per_s"] for c in cands]
    assert rates == sorted(rates, reverse=True) and "ar" in {c["label"] for c in cands}
    assert summary["n_trials"] == 40 and summary["workload"]["batch_size"] == 2
    for fig in ("history.png", "speedups.png", "fan_out.png"):
        assert (out / fig).stat().st_size > 1000
    assert list((cache / "studies").glob("*.journal"))  # the default storage was used
    # the same command again resumes the finished study: no new trials, same answer
    assert main([*argv, "--quiet", "--top-n", "2", "--reeval-seeds", "2", "--no-plots"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["n_trials"] == 40 and again["best"]["tokens_per_s"] == best["tokens_per_s"]


def test_infeasible_policies_are_never_the_best(tmp_path, cache, capsys):
    """1 MiB of draft memory holds B*M*k <= 54 cached tokens on embedded-cpu (vocab 4096 x 4 bytes
    + 3 KiB of KV each): the paper's default (k=7, M=24) does not fit and must not win."""
    out = tmp_path / "out"
    argv = [
        "--profile",
        "embedded-cpu",
        "--cache-memory",
        "1MiB",
        "--n-trials",
        "60",
        "--out",
        str(out),
    ]
    assert main([*argv, "--quiet", "--no-plots", "--top-n", "3", "--reeval-seeds", "1"]) == 0
    assert "over cache memory" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cache_memory_limit_bytes"] == 2**20
    assert summary["best"]["fits_cache_memory"] and summary["best"]["cache_memory_bytes"] <= 2**20
    assert not summary["baselines"]["paper_default"]["fits_cache_memory"]


def test_replay_drives_the_trials_at_t0(tmp_path, cache, capsys):
    """--replay: an always-right draft text makes SD accept all k at every step; the study is
    another one than the chance model's; bad combinations fail before any study."""
    from tests.ssdsim.test_sim_replay import make_replay
    from tests.studies.test_replay_check import _write

    replay = _write(make_replay(lambda q: True, seqs=4, length=40 + 16 + 2), tmp_path / "r.json")
    wl = tmp_path / "w.json"
    Workload(output_len_tokens=40, prompt_len_tokens=10, num_prompts=4).save(wl)
    out = tmp_path / "out"
    argv = ["--profile", "embedded-cpu", "--workload", str(wl), "--n-trials", "12"]
    argv += ["--k-max", "8", "--quiet", "--no-plots", "--top-n", "2", "--reeval-seeds", "1"]
    assert main([*argv, "--out", str(out), "--replay", str(replay)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["replay"] == str(replay)
    sd = summary["baselines"]["sd"]
    assert sd["mean_accepted_len"] == pytest.approx(sd["policy"]["k"])
    assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    plain = json.loads((tmp_path / "plain" / "summary.json").read_text())
    assert plain["study"] != summary["study"] and plain["replay"] is None
    for extra, needle in (
        (["--temperature", "1"], "no study runs at temperature 0"),
        (["--replay", str(tmp_path / "none.json")], "no such file"),
    ):
        with pytest.raises(SystemExit) as e:
            main([*argv, "--out", str(out), "--replay", str(replay), *extra])
        assert e.value.code == 2 and needle in capsys.readouterr().err
    other = tmp_path / "w12.json"
    Workload(output_len_tokens=40, prompt_len_tokens=12, num_prompts=4).save(other)
    with pytest.raises(SystemExit):
        main([*argv[:3], str(other), *argv[4:], "--out", str(out), "--replay", str(replay)])
    assert "prompt lengths" in capsys.readouterr().err
