"""SSD when things go wrong: a dead or stalled draft, Ctrl-C, and policies that cannot run.

- The draft worker killed (SIGKILL) or stalled (SIGSTOP, past the link's timeout) mid-run: the
  target finishes alone (AR for the jit fallback, the fast speculator for fast) with output
  identical to AR's, a logged warning, and the failure in the run summary.
- SIGINT to ``python -m executor.run --mode ssd``: the parent and every process it started are
  gone within 5 seconds.
- A policy with wrong list lengths, a budget mismatch, or k too large for the models' context is
  rejected by the CLI before any model loads or any worker starts.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import executor.run as run_cli
from executor.engines.ar import AREngine
from executor.engines.common import Sampling, generate
from executor.ssd.engine import SSDEngine
from ssdsim.policy import Policy

ROOT = Path(__file__).resolve().parents[3]


def _inject(link, at_call: int, action) -> None:
    """Run ``action(pid)`` just before the link's request number ``at_call``."""
    request, calls = link.request, [0]

    def wrapped(req, step):
        calls[0] += 1
        if calls[0] == at_call:
            action(link.pid)
        return request(req, step)

    link.request = wrapped


@pytest.mark.parametrize(
    ("fallback", "sig", "timeout_s"),
    [("jit", signal.SIGKILL, 10.0), ("fast", signal.SIGSTOP, 1.0)],
    ids=["killed_jit", "stalled_fast"],
)
def test_draft_failure_finishes_alone(
    start_link, target, prompts32, caplog, fallback, sig, timeout_s
):
    prompts = prompts32[:8]
    policy = Policy(mode="ssd", k=3, fan_out=(3, 2, 1, 2), fallback=fallback)
    link = start_link(policy, Sampling(), 4, timeout_s=timeout_s)
    _inject(link, 6, lambda pid: os.kill(pid, sig))
    with caplog.at_level(logging.WARNING, logger="executor.ssd.engine"):
        result = generate(
            SSDEngine(target, link, policy, Sampling()),
            prompts,
            batch_size=4,
            max_new_tokens=32,
            sampling=Sampling(),
        )
    want = generate(
        AREngine(target, Sampling()), prompts, batch_size=4, max_new_tokens=32, sampling=Sampling()
    ).outputs
    assert result.outputs == want
    assert "SSD draft failed" in caplog.text
    extra = result.summary.extra
    assert extra["draft_failure"] and extra["draft_failed_at_step"] == 5
    assert link.proc is None  # the worker was stopped and reaped
    late = [o for s in result.steps[5:] for o in s.seqs]
    assert late and all(not o.cache_hit for o in late)
    alone = {"fast", "none"} if fallback == "fast" else {"none"}
    assert {o.proposer for o in late} <= alone


def _descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        out |= {int(k) for k in kids}
        todo += [int(k) for k in kids]
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_both_processes(smoke_cache):
    args = ["--mode", "ssd", "--pair", "smoke", "--prompts", "smoke8", "--k", "3"]
    args += ["--max-new-tokens", "190", "--draft-timeout", "30"]
    env = {**os.environ, "SSDSIM_CACHE": str(smoke_cache), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor.run", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # as a terminal's foreground job: a shell without job control starts background
        # commands (e.g. a CI runner's) with SIGINT ignored, and children inherit that
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        kids: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            kids = _descendants(proc.pid)
            workers = [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]
            if workers and _worker_busy(workers[0]):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        proc.wait(timeout=5)
        while any(_alive(k) for k in kids) and time.monotonic() - start < 5:
            time.sleep(0.05)
        assert time.monotonic() - start < 5
        assert not [k for k in kids if _alive(k)]
        assert proc.returncode == 130
    finally:
        if proc.poll() is None:
            proc.kill()


def _worker_busy(pid: int) -> bool:
    """The worker has used a second of CPU: it loaded the draft and is serving requests."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()
    except OSError:
        return False
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") > 1.0


@pytest.fixture
def nothing_starts(monkeypatch):
    monkeypatch.setattr(
        run_cli.Decoder, "from_dir", lambda *a, **k: pytest.fail("a model was loaded")
    )
    monkeypatch.setattr(run_cli, "open_engine", lambda *a, **k: pytest.fail("a worker started"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--k", "3", "--fan-out", "3,2,1"], "a list of k+1 = 4 integers"),
        (["--k", "2", "--fan-out", "3,2,1", "--fan-out-miss", "5,2,1"], "the same sum"),
        (["--k", "40", "--max-new-tokens", "180"], "exceed the models' context of 256"),
        (["--k", "2", "--rescale", "1.5"], "rescale"),
    ],
    ids=["list_length", "budget_mismatch", "k_too_large", "rescale"],
)
def test_invalid_policy_rejected_before_loading(
    smoke_cache, nothing_starts, capsys, extra, message
):
    args = ["--mode", "ssd", "--pair", "smoke", "--prompts", "smoke8", *extra]
    assert run_cli.main(args) == 2
    assert message in capsys.readouterr().err


def test_invalid_policy_file_rejected_before_loading(smoke_cache, nothing_starts, tmp_path, capsys):
    bad = tmp_path / "policy.json"
    bad.write_text('{"mode": "ssd", "k": 2, "fan_out": [3, 2], "fan_out_miss": [3, 2]}')
    args = ["--policy", str(bad), "--pair", "smoke", "--prompts", "smoke8"]
    assert run_cli.main(args) == 2
    err = capsys.readouterr().err
    assert "policy.json" in err and "k+1 = 3 integers" in err
