"""Persistent studies: a killed study resumes with its trials; two worker processes share one study."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from ssdsim import SchemaError
from ssdsim.optimize.polish import CHUNK
from ssdsim.optimize.storage import (
    fail_stale_trials,
    open_storage,
    open_study,
    own_new_trials,
    study_name,
)

PROFILE = "paper-llama70b-h100"
ROOT = Path(__file__).resolve().parents[3]


def optimize_cmd(journal: Path, n_trials: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "ssdsim.optimize", "--profile", PROFILE, "--storage", str(journal), "--study", "s",
        "--n-trials", str(n_trials), "--quiet", "--no-plots", "--top-n", "1", "--reeval-seeds", "1", *extra,
    ]  # fmt: skip


def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ, SSDSIM_CACHE=str(tmp_path / "cache"))
    e["PYTHONPATH"] = os.pathsep.join(p for p in (e.get("PYTHONPATH"), str(ROOT)) if p)
    return e


def trials(
    journal: Path, states: tuple[TrialState, ...] = (TrialState.COMPLETE,)
) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="s", storage=open_storage(str(journal)))
    return study.get_trials(deepcopy=False, states=states)


def wait_for(journal: Path, n: int, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            pytest.fail(f"worker exited early: {proc.stderr.read() if proc.stderr else ''}")
        if journal.exists() and journal.stat().st_size > 0:
            try:
                if len(trials(journal)) >= n:
                    return
            except KeyError:  # study not created yet
                pass
        time.sleep(0.3)
    pytest.fail(f"no {n} finished trials within {timeout_s} s")


def test_killed_study_resumes_with_its_trials(tmp_path):
    journal = tmp_path / "studies.journal"
    proc = subprocess.Popen(
        optimize_cmd(journal, 1000),
        cwd=tmp_path,
        env=env(tmp_path),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(journal, 30, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = {t.number: t.value for t in trials(journal)}
    assert len(before) >= 30
    target = len(before) + 15
    done = subprocess.run(
        optimize_cmd(journal, target),
        cwd=tmp_path,
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    after = {t.number: t.value for t in trials(journal)}
    assert all(after[n] == v for n, v in before.items())  # every finished trial kept, unchanged
    assert len(after) == target  # and only the remainder was run
    assert not trials(journal, (TrialState.RUNNING,))  # the trial the kill interrupted was failed
    assert "best" in done.stdout and (tmp_path / "out/optimize/summary.json").is_file()


def test_two_workers_share_one_study(tmp_path):
    journal = tmp_path / "studies.journal"
    n = 60
    procs = [
        subprocess.Popen(
            optimize_cmd(journal, n, "--out", f"out{i}"),
            cwd=tmp_path,
            env=env(tmp_path),
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    done = trials(journal)
    workers = {t.user_attrs["worker"] for t in done}
    assert len(workers) == 2  # both processes ran trials of the one study
    assert (
        n <= len(done) <= n + CHUNK
    )  # together they stop at the target (their last chunks may overlap)
    labels = [t.user_attrs.get("seed_label") for t in done if t.user_attrs.get("seed_label")]
    assert {"ar", "paper-default", "sd k=1"} <= set(labels)


def test_stale_trials_of_dead_workers_only_are_failed(tmp_path):
    storage = open_storage(str(tmp_path / "j.journal"))
    study = open_study(storage, "x", {"a": 1})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = __import__("socket").gethostname()
    for who in (f"{host}:{dead.pid}", f"{host}:{os.getpid()}", f"other-host:{dead.pid}"):
        t = study.ask()
        t.set_user_attr("worker", who)
    assert fail_stale_trials(study) == 1
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]


def test_study_config_mismatch_is_refused(tmp_path):
    storage = open_storage(str(tmp_path / "j.journal"))
    open_study(storage, "x", {"profile": "a", "seed": 0})
    with pytest.raises(SchemaError, match="differs in: seed"):
        open_study(storage, "x", {"profile": "a", "seed": 1})
    assert study_name("p", "w", 4, 0.7, {"a": 1}) != study_name("p", "w", 4, 0.7, {"a": 2})


def test_a_trial_is_owned_from_its_first_write(tmp_path):
    """A worker killed right after starting a trial (before its objective ran) leaves a trial
    that names it, new or taken from the queue, so a resumed study fails it."""
    import socket

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    worker = f"{socket.gethostname()}:{int(dead.stdout)}"
    storage = own_new_trials(open_storage(str(tmp_path / "j.journal")), worker)
    study = open_study(storage, "s", {"a": 1})
    study.enqueue_trial({"x": 0.5})
    queued, new = study.ask(), study.ask()  # the first comes from the queue
    for t in study.get_trials(deepcopy=False):
        assert t.state == TrialState.RUNNING and t.user_attrs["worker"] == worker
    assert {queued.number, new.number} == {0, 1}
    assert fail_stale_trials(study) == 2
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
