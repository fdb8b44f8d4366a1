"""python -m ssdsim.simulate: JSON output, presets, traces, and clear errors (exit status 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ssdsim import Policy, read_trace
from ssdsim.simulate import main

KEYS = {"tokens_per_s", "batch_tokens_per_s", "mean_accepted_len", "tokens_per_step", "hit_rate"}
BASE = ["--profile", "paper-llama70b-h100", "--output-len", "64", "--num-prompts", "2"]


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "argv",
    [
        ["--mode", "ar"],
        ["--mode", "sd", "--k", "6"],
        [
            "--mode",
            "ssd",
            "--k",
            "3",
            "--fan-out",
            "4,2,1,1",
            "--fan-out-miss",
            "5,2,1,0",
            "--fallback",
            "auto",
            "--rescale",
            "0.5",
            "--batch-size",
            "2",
            "--temperature",
            "0.7",
        ],
    ],
)
def test_json_summary(capsys, argv):
    out = _json(capsys, BASE + argv + ["--json"])
    assert KEYS <= set(out) and out["tokens_per_s"] > 0
    assert (out["hit_rate"] is None) == (argv[1] != "ssd")


def test_policy_file_trace_and_text_output(capsys, tmp_path):
    pol = Policy(mode="ssd", k=2, fan_out=(2, 1, 1))
    path = pol.save(tmp_path / "policy.json")
    trace = tmp_path / "t.jsonl"
    assert main([*BASE, "--policy", str(path), "--trace", str(trace), "--engine", "simpy"]) == 0
    assert "tokens/s per seq" in capsys.readouterr().out
    assert Policy.from_dict(read_trace(trace).header.policy) == pol


def test_list_profiles(capsys):
    assert main(["--list-profiles"]) == 0
    out = capsys.readouterr().out
    assert "paper-llama70b-h100" in out and "embedded-cpu" in out


def test_runs_as_module():
    done = subprocess.run(
        [sys.executable, "-m", "ssdsim.simulate", *BASE, "--mode", "ar", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert KEYS <= set(json.loads(done.stdout))


@pytest.mark.parametrize(
    "argv, needle",
    [
        (
            ["--mode", "ssd", "--k", "2", "--fan-out", "1,1"],
            "Policy.fan_out: got [1, 1], expected a list of k+1 = 3",
        ),
        (["--mode", "ssd", "--k", "2", "--fan-out", "1,x,1"], "--fan-out: got '1,x,1'"),
        (["--mode", "ssd", "--k", "1", "--fan-out", "1,-1"], "fan_out[1]: got -1"),
        (["--mode", "ssd", "--k", "1", "--fan-out", "0,0"], "all-zero"),
        (["--mode", "ssd", "--k", "1", "--fan-out", "1,1", "--fan-out-miss", "2,1"], "same sum"),
        (["--mode", "sd"], "--k: required for --mode sd"),
        (["--mode", "sd", "--k", "0"], "Policy.k: got 0"),
        (["--mode", "ssd", "--k", "1", "--rescale", "0"], "Policy.rescale: got 0.0"),
        (["--mode", "ssd", "--k", "1", "--rescale", "1.5"], "Policy.rescale: got 1.5"),
        (["--mode", "sd", "--k", "2", "--fan-out", "1,1,1"], "--fan-out: only for --mode ssd"),
        (["--mode", "ar", "--k", "2"], "--k: not used by --mode ar"),
        (["--mode", "ar", "--batch-size", "0"], "--batch-size: Workload.batch_size: got 0"),
        (["--mode", "ar", "--temperature", "-1"], "--temperature: Workload.temperature: got -1.0"),
        (["--mode", "ar", "--seed", "-3"], "--seed: got -3"),
        (["--mode", "ar", "--policy", "p.json"], "give either --policy FILE or --mode"),
        ([], "--mode: give --policy FILE or --mode"),
        (["--mode", "turbo"], "invalid choice: 'turbo'"),
        (
            ["--mode", "ar", "--profile", "nope"],
            "--profile: profile 'nope' is neither a file nor a preset",
        ),
        (["--policy", "missing.json"], "--policy: Policy file 'missing.json' does not exist"),
        (
            ["--mode", "ar", "--workload", "missing.json"],
            "--workload: Workload file 'missing.json' does not exist",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_problem(capsys, argv, needle):
    with pytest.raises(SystemExit) as e:
        main(BASE[2:] + argv)
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_policy_file_with_a_typo(capsys, tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"mode": "ssd", "k": 1, "fanout": [1, 1]}))
    with pytest.raises(SystemExit) as e:
        main(["--policy", str(bad)])
    assert e.value.code == 2 and "unknown field(s) 'fanout'" in capsys.readouterr().err


def test_profile_and_workload_file_errors(capsys, tmp_path):
    prof = tmp_path / "prof.json"
    prof.write_text(json.dumps({"name": "x", "target": {"fixed": 1.0}, "draft": {}}))
    with pytest.raises(SystemExit) as e:
        main(["--profile", str(prof), "--mode", "ar"])
    err = capsys.readouterr().err
    assert (
        e.value.code == 2
        and "--profile:" in err
        and "Profile.target: unknown field(s) 'fixed'" in err
    )
    bad = tmp_path / "w.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit) as e:
        main(["--mode", "ar", "--workload", str(bad)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--workload:" in err and "is not valid JSON" in err


def test_replay_from_the_command_line(capsys, tmp_path):
    """--replay: T = 0 outcomes from the prompts' texts (an always-right draft: every SD step
    accepts all k); a missing file and a temperature above 0 are named."""
    from tests.ssdsim.test_sim_replay import make_replay
    from tests.studies.test_replay_check import _write

    replay = _write(make_replay(lambda q: True), tmp_path / "r.json")
    argv = ["--mode", "sd", "--k", "4", "--output-len", "40", "--prompt-len", "10"]
    argv += ["--num-prompts", "3", "--json", "--replay", str(replay)]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["mean_accepted_len"] == pytest.approx(4.0)
    for extra, needle in (
        (["--replay", str(tmp_path / "none.json")], "--replay: replay: no such file"),
        (["--temperature", "1"], "expected both 0"),
    ):
        with pytest.raises(SystemExit) as e:
            main(argv + extra)
        assert e.value.code == 2 and needle in capsys.readouterr().err
