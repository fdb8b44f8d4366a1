"""Where studies live, what they are called, and how a study is opened, checked and resumed.

Default storage: an Optuna journal file, ``<ssdsim cache>/studies/optimize.journal`` (see
``ssdsim.paths``; ``$SSDSIM_CACHE`` moves it). It is an append-only log, so a study killed at any
point keeps every finished trial, and several processes on one machine may share it (a lock file
serialises their writes). ``--storage`` takes any Optuna storage instead:

- ``sqlite:///file.db``, ``postgresql://...``, ``mysql://...``: an RDB storage with a heartbeat,
  so trials of a worker that died are failed by the next worker (several machines, one study);
- ``redis://...``: a journal on Redis; ``memory``: in-process only (benchmarks);
- anything else: a journal file at that path.

A study is named from the profile, the workload and a fingerprint of everything that defines its
objective (profile and workload contents, search space, cache limit, seed), so a rerun of the
same command resumes the same study and a changed setting starts a new one.

Never imports torch, executor or kernels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from ssdsim._schema import SchemaError
from ssdsim.optimize.objective import WORKER_ATTR
from ssdsim.paths import studies_dir

log = logging.getLogger(__name__)

JOURNAL_NAME = "optimize.journal"
CONFIG_ATTR = "config"
RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def default_storage_path() -> Path:
    return studies_dir() / JOURNAL_NAME


def open_storage(url: str | None) -> BaseStorage:
    """An Optuna storage for ``url`` (None: the default journal file)."""
    if url is None or url == "":
        path = default_storage_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url == "memory":
        return InMemoryStorage()
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme in RDB_SCHEMES:
        with warnings.catch_warnings():  # the heartbeat is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, heartbeat_interval=30, grace_period=120)
    if scheme == "redis":
        from optuna.storages.journal import JournalRedisBackend

        return JournalStorage(JournalRedisBackend(url))
    if scheme:
        raise SchemaError(
            f"--storage: got {url!r}, expected sqlite://, postgresql://, mysql://, redis://, memory or a file path"
        )
    path = Path(url).expanduser()
    if path.is_dir():
        raise SchemaError(
            f"--storage: got {url!r}, which is a directory; expected a journal file path"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def describe_storage(url: str | None) -> str:
    return str(default_storage_path()) if not url else url


def fingerprint(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def study_name(
    profile_name: str,
    workload_name: str,
    batch_size: int,
    temperature: float,
    config: dict[str, Any],
) -> str:
    """E.g. ``embedded-cpu.default.B1.T0.3f2a9c1e``."""
    return f"{profile_name}.{workload_name}.B{batch_size}.T{temperature:g}.{fingerprint(config)}"


def open_study(storage: BaseStorage, name: str, config: dict[str, Any]) -> optuna.Study:
    """Create or load study ``name``; a loaded study must have been made for the same config."""
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", load_if_exists=True
    )
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, json.loads(json.dumps(config, default=str)))
    elif fingerprint(stored) != fingerprint(config):
        diff = sorted(
            k
            for k in set(stored) | set(config)
            if fingerprint({k: stored.get(k)}) != fingerprint({k: config.get(k)})
        )
        raise SchemaError(
            f"study {name!r} was created for a different setup (differs in: {', '.join(diff)}); "
            "drop --study to get a study named for this setup, or pick a new name"
        )
    return study


def complete_count(study: optuna.Study) -> int:
    """Finished trials of the study, all workers together."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def own_new_trials(storage: BaseStorage, worker: str) -> BaseStorage:
    """Make every trial this process starts carry ``worker`` (``WORKER_ATTR``) from its first
    write on, so that a kill can never leave a RUNNING trial nobody owns (which
    ``fail_stale_trials`` could not tell from a live worker's): a new trial is created with the
    attribute, and a queued one gets it before it is marked RUNNING. Returns the storage."""
    create, set_state = storage.create_new_trial, storage.set_trial_state_values

    def create_new_trial(study_id: int, template_trial: Any = None) -> int:
        if template_trial is None:
            template_trial = optuna.trial.create_trial(
                state=TrialState.RUNNING, user_attrs={WORKER_ATTR: worker}
            )
        return create(study_id, template_trial)

    def set_trial_state_values(trial_id: int, state: TrialState, values: Any = None) -> bool:
        if state == TrialState.RUNNING:
            storage.set_trial_user_attr(trial_id, WORKER_ATTR, worker)
        return set_state(trial_id, state, values)

    storage.create_new_trial = create_new_trial  # type: ignore[method-assign]
    storage.set_trial_state_values = set_trial_state_values  # type: ignore[method-assign]
    return storage


def fail_stale_trials(study: optuna.Study) -> int:
    """Mark RUNNING trials of dead workers on this host as FAIL (left behind by a kill); returns how many.

    Trials of live workers, and of workers on other hosts (handled by an RDB storage's heartbeat),
    are left alone.
    """
    host = socket.gethostname()
    failed = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = str(t.user_attrs.get(WORKER_ATTR, ""))
        worker_host, _, pid = who.rpartition(":")
        if worker_host == host and pid.isdigit() and not _pid_alive(int(pid)):
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            failed += 1
    if failed:
        log.info("study %s: marked %d trials of dead workers as failed", study.study_name, failed)
    return failed
