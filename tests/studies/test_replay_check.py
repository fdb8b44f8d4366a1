"""studies/replay_check.py: replay a trace row by row and count the differences."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ssdsim import Policy, Workload, load_profile
from ssdsim.simulator import simulate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "studies"))
import replay_check  # noqa: E402

from tests.ssdsim.test_sim_replay import make_replay  # noqa: E402


def _write(replay, path: Path) -> Path:
    seqs = [
        {"prompt_len": s.prompt_len, "text": s.text, "draft_top": s.top, "fast": s.fast}
        for s in replay.sequences
    ]
    data = {"kind": "text_replay", "schema_version": 1, "max_k": replay.max_k, "depth": 8}
    path.write_text(json.dumps({**data, "sequences": seqs}))
    return path


def test_a_trace_of_its_own_replay_checks_clean_and_another_does_not(tmp_path, capsys):
    right = make_replay(lambda q: q % 3)
    wl = Workload(batch_size=1, output_len_tokens=40, prompt_len_tokens=10, num_prompts=3)
    trace = tmp_path / "sd.jsonl"
    simulate(
        load_profile("embedded-cpu"), Policy(mode="sd", k=4), wl, trace_path=trace, replay=right
    )
    assert replay_check.main([str(_write(right, tmp_path / "r.json")), str(trace)]) == 0
    out = capsys.readouterr().out
    assert "'accepted_wrong': 0" in out and "'rows': 0" not in out
    wrong = make_replay(lambda q: q % 2)
    assert replay_check.main([str(_write(wrong, tmp_path / "w.json")), str(trace)]) == 0
    assert "'accepted_wrong': 0" not in capsys.readouterr().out
