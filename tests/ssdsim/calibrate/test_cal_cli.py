"""``python -m ssdsim.calibrate``: happy path, and bad traces or latency files rejected with clear errors."""

from __future__ import annotations

import json

import pytest

from ssdsim import Policy, Workload, load_profile
from ssdsim.calibrate.cli import main
from ssdsim.profile import LatencyMeasurements, Profile
from ssdsim.simulator import simulate

WL = Workload(batch_size=2, output_len_tokens=64, prompt_len_tokens=50, num_prompts=4)


@pytest.fixture(scope="module")
def ssd_trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("t") / "ssd.jsonl"
    pol = Policy(mode="ssd", k=3, fan_out=(3, 2, 1, 1))
    simulate(load_profile("embedded-cpu"), pol, WL, trace_path=path)
    return path


def test_cli_writes_a_profile_and_prints_residuals(ssd_trace, tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert main([str(ssd_trace), "--name", "mine", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "acceptance per position" in text and "coverage after a rejection" in text
    assert "hit rate" in text and f"wrote {out}" in text
    prof = Profile.load(out)
    assert prof.name == "mine" and prof.chance.points[0].samples > 0


def _bad(tmp_path, lines: list[str]) -> str:
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_missing_trace_file(tmp_path, capsys):
    err = _error(capsys, [str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.json")])
    assert "nope.jsonl" in err and "does not exist" in err


def test_invalid_json_names_file_and_line(ssd_trace, tmp_path, capsys):
    lines = [*ssd_trace.read_text().splitlines()[:3], "{not json"]
    err = _error(capsys, [_bad(tmp_path, lines), "-o", str(tmp_path / "o.json")])
    assert "bad.jsonl:4" in err and "not valid JSON" in err


def test_trace_without_header(ssd_trace, tmp_path, capsys):
    lines = ssd_trace.read_text().splitlines()[1:]
    err = _error(capsys, [_bad(tmp_path, lines), "-o", str(tmp_path / "o.json")])
    assert "no header" in err


def test_trace_without_steps(ssd_trace, tmp_path, capsys):
    header = ssd_trace.read_text().splitlines()[0]
    err = _error(capsys, [_bad(tmp_path, [header]), "-o", str(tmp_path / "o.json")])
    assert "bad.jsonl" in err and "no step records" in err


def test_bad_step_field_names_record(ssd_trace, tmp_path, capsys):
    lines = ssd_trace.read_text().splitlines()
    step = json.loads(lines[1])
    step["seqs"][0]["accepted_len"] = 99
    err = _error(
        capsys, [_bad(tmp_path, [lines[0], json.dumps(step)]), "-o", str(tmp_path / "o.json")]
    )
    assert "record 2" in err and "accepted_len" in err


def test_ar_traces_alone_say_nothing_about_acceptance(tmp_path, capsys):
    path = tmp_path / "ar.jsonl"
    simulate(load_profile("embedded-cpu"), Policy(mode="ar"), WL, trace_path=path)
    err = _error(capsys, [str(path), "-o", str(tmp_path / "o.json")])
    assert "no trace has draft proposals" in err


def test_bad_latency_file(ssd_trace, tmp_path, capsys):
    lat = tmp_path / "lat.json"
    bad = {
        "target": {"grid": {"batch": [1, 2], "tokens": [1], "context": [8], "seconds": [[[0.1]]]}},
        "draft": {},
    }
    lat.write_text(json.dumps(bad))
    err = _error(capsys, [str(ssd_trace), "--latency", str(lat), "-o", str(tmp_path / "o.json")])
    assert "lat.json" in err and "LatencyGrid.seconds" in err and "[2, 1, 1]" in err
    assert LatencyMeasurements  # the contract the file must follow


def test_bad_depth(ssd_trace, tmp_path, capsys):
    err = _error(capsys, [str(ssd_trace), "--depth", "0", "-o", str(tmp_path / "o.json")])
    assert "--depth" in err
