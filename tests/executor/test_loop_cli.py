"""The closed loop end to end on the smoke pair: executor traces -> ssdsim.calibrate -> ssdsim.validate.

Integration tests: ``ssdsim.validate`` runs ``python -m executor.run`` in subprocesses (ssdsim
never imports the executor), caches each point, and resumes without rerunning. Small on purpose
(the smoke pair, 2 prompts, 12 tokens): they test the plumbing, not the accuracy.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from executor.run import main as run_main
from ssdsim.calibrate.cli import main as calibrate_main
from ssdsim.validate.cli import main as validate_main


@pytest.fixture(scope="module")
def calibrated(smoke_build, tmp_path_factory):
    d = tmp_path_factory.mktemp("loop")
    common = [
        "--pair",
        str(smoke_build.pair_dir),
        "--prompts",
        str(smoke_build.prompt_files["smoke8"]),
    ]
    common += ["--num-prompts", "2", "--max-new-tokens", "12", "--json", "--speed-probe"]
    with contextlib.redirect_stdout(io.StringIO()):  # in-process: no torch import per run
        assert run_main(["--mode", "sd", "--k", "2", "--trace", str(d / "sd.jsonl"), *common]) == 0
        assert run_main(["--mode", "ar", "--trace", str(d / "ar.jsonl"), *common]) == 0
    out = d / "cal.json"
    assert calibrate_main([str(d / "sd.jsonl"), str(d / "ar.jsonl"), "-o", str(out)]) == 0
    return out


def _validate(profile: Path, out: Path, *extra: str) -> int:
    argv = ["--profile", str(profile), "--pair", "smoke", "--prompts", "smoke8"]
    argv += ["--num-prompts", "2", "--max-new-tokens", "12", "--out", str(out), "--json", *extra]
    argv += ["--quiet-wait", "0", "--retries", "0"]  # tests measure plumbing, not speed
    return validate_main(argv)


def test_validate_measures_simulates_and_resumes(smoke_cache, calibrated, tmp_path, capsys):
    grid = ("--modes", "ar,sd", "--ks", "2", "--batch-sizes", "1", "--temperatures", "0")
    assert _validate(calibrated, tmp_path, *grid) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["points"] == 2 and last["median_abs_error"] is not None
    assert {r["key"] for r in last["rows"]} == {"ar_b1_t0", "sd_k2_b1_t0"}
    for r in last["rows"]:
        assert r["measured"]["tokens_per_s"] > 0 and r["predicted"]["tokens_per_s"] > 0
        # every run probed the machine, and so did the calibration's: an error at the probed speed
        assert 0.2 < r["speed"] < 5 and r["adjusted_error"] is not None
    assert last["adjusted_points"] == 2 and last["adjusted_median_abs_error"] is not None
    records = sorted((tmp_path / "points").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in records]
    assert _validate(calibrated, tmp_path, *grid) == 0  # resumed: nothing rerun
    assert [p.stat().st_mtime_ns for p in records] == stamps
    assert (tmp_path / "validation.json").is_file()


def test_failed_executor_run_is_reported(smoke_cache, calibrated, tmp_path, capsys):
    argv = ["--profile", str(calibrated), "--pair", "nosuchpair", "--prompts", "smoke8"]
    argv += ["--modes", "ar", "--batch-sizes", "1", "--temperatures", "0", "--out", str(tmp_path)]
    argv += ["--quiet-wait", "0"]
    assert validate_main(argv) == 2
    err = capsys.readouterr().err
    assert "ar_b1_t0" in err and "nosuchpair" in err


def test_bad_validate_flags(calibrated, tmp_path, capsys):
    argv = [
        "--profile",
        str(calibrated),
        "--pair",
        "smoke",
        "--prompts",
        "smoke8",
        "--out",
        str(tmp_path),
    ]
    assert validate_main([*argv, "--modes", "ar,xx"]) == 2
    assert "--modes" in capsys.readouterr().err
    assert validate_main([*argv, "--repeats", "0"]) == 2
    assert "--repeats" in capsys.readouterr().err


def test_target_speed_reads_the_machine_against_calibration(calibrated, tmp_path):
    """On the run the profile was calibrated on, as measured, the target ran at the profile's
    speed; a run whose verifications took 1.5x as long reads 1.5x (SSD traces have no reading)."""
    from ssdsim.profile import load_profile
    from ssdsim.validate.compare import target_speed

    sd = calibrated.parent / "sd.jsonl"
    with contextlib.redirect_stdout(io.StringIO()):
        assert calibrate_main([str(sd), "--raw-speed", "-o", str(tmp_path / "sd_cal.json")]) == 0
    profile = load_profile(str(tmp_path / "sd_cal.json"))
    speed = target_speed(profile, str(sd))
    assert speed == pytest.approx(1.0, rel=1e-6)
    slow = tmp_path / "slow.jsonl"
    lines = []
    for line in sd.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("type") == "step":
            rec["verify_s"] *= 1.5
        lines.append(json.dumps(rec))
    slow.write_text("\n".join(lines) + "\n")
    assert target_speed(profile, str(slow)) == pytest.approx(1.5, rel=1e-6)
    ssd = tmp_path / "ssd.jsonl"
    head, *rest = sd.read_text().splitlines()
    rec = json.loads(head)
    rec["policy"]["mode"] = "ssd"
    ssd.write_text("\n".join([json.dumps(rec), *rest]) + "\n")
    assert target_speed(profile, str(ssd)) is None
