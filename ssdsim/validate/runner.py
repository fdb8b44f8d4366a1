"""Run the executor at one validation point, through a subprocess, and cache what it measured.

``measure(point, settings, out, repeat)`` runs ``python -m executor.run ... --json --trace`` (ssdsim
never imports the executor), keeps its JSON report (without the generated ids) and trace under
``out/``, and writes ``out/points/<key>_r<repeat>.json``. A point whose record exists with the same
settings is not run again, so an interrupted validation resumes where it stopped. At T > 0 pass r
samples with seed + r (``RunSettings.run_seed``), so that the median over passes averages the
sampling's luck as the simulator's mean over its seeds does. Runs wait for a
quiet machine and each record notes how contended it was (``machine``). Never torch or the executor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ssdsim.validate.grid import Point
from ssdsim.validate.machine import Contention, wait_for_quiet

ROOT = Path(__file__).resolve().parents[2]  # the directory holding ssdsim/ and executor/


class ValidationError(ValueError):
    """Bad validation input, or an executor run that failed (the message says which and why)."""


@dataclass(frozen=True)
class RunSettings:
    """What every executor run of a validation shares."""

    pair: str
    prompts: str
    num_prompts: int | None
    max_new_tokens: int
    seed: int = 0
    timeout_s: float = 1800.0
    quiet_cores: float | None = 0.5
    max_foreign_cores: float = 0.25
    retries: int = 2
    quiet_timeout_s: float = 300.0
    vary_seed: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The settings that define a result (the cache key); how to wait and retry are not."""
        d = asdict(self)
        for n in (
            "timeout_s",
            "quiet_cores",
            "max_foreign_cores",
            "retries",
            "quiet_timeout_s",
            "vary_seed",
        ):
            d.pop(n)
        return d

    def run_seed(self, point: Point, repeat: int) -> int:
        """The executor's seed for pass ``repeat`` of ``point``: ``seed + repeat`` at T > 0
        (with ``vary_seed``), else ``seed`` (greedy decoding does not use it).

        One seed for every pass repeats one draw of the sampling: 12 prompts of 64 tokens at
        T = 1 gave SD k=4 B=4 2.72 tokens per step in every pass of loops 15 and 16, 2.96 at
        B=1 (same prompts, other draws), against 2.93 simulated; the passes' median then
        carries that draw's luck, which the simulator's mean over seeds does not."""
        return self.seed + repeat if self.vary_seed and point.temperature > 0 else self.seed

    def key(self, point: Point, repeat: int) -> dict[str, Any]:
        """``as_dict`` with the pass's own seed: a cached record is reused only for it."""
        return {**self.as_dict(), "seed": self.run_seed(point, repeat)}


def executor_argv(
    point: Point, s: RunSettings, policy_file: Path, trace: Path, repeat: int = 0
) -> list[str]:
    """The ``python -m executor.run`` command line of one pass of a point."""
    p = point.policy
    argv = [sys.executable, "-m", "executor.run", "--mode", p.mode, "--pair", s.pair]
    argv += ["--prompts", s.prompts, "--batch-size", str(point.batch_size)]
    argv += ["--temperature", f"{point.temperature:g}", "--max-new-tokens", str(s.max_new_tokens)]
    argv += ["--seed", str(s.run_seed(point, repeat)), "--json", "--trace", str(trace)]
    argv += ["--speed-probe"]
    if s.num_prompts is not None:
        argv += ["--num-prompts", str(s.num_prompts)]
    if p.mode == "sd":
        argv += ["--k", str(p.k)]
    elif p.mode == "ssd":
        argv += ["--policy", str(policy_file)]
    return argv


def _last_json(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        try:
            out = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(out, dict):
            return out
    raise ValidationError(f"executor printed no JSON report; stdout ends {stdout[-300:]!r}")


def _run_once(argv: list[str], key: str, s: RunSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """One executor run: its JSON report and how contended the machine was meanwhile."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    before = (
        wait_for_quiet(s.quiet_cores, timeout_s=s.quiet_timeout_s)
        if s.quiet_cores is not None
        else None
    )
    load0 = os.getloadavg()[0]
    try:
        with Contention() as c:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=s.timeout_s, env=env, cwd=ROOT
            )
    except subprocess.TimeoutExpired as exc:
        raise ValidationError(f"point {key}: the executor ran past {s.timeout_s:g} s") from exc
    if proc.returncode != 0:
        raise ValidationError(
            f"point {key}: executor exited with status {proc.returncode}: {proc.stderr.strip()[-800:]}\n"
            f"command: {' '.join(argv)}"
        )
    measured = _last_json(proc.stdout)
    measured.pop("outputs", None)
    machine = {
        "busy_cores_before": before,
        "foreign_cores": c.foreign_cores,
        "niced_cores": c.niced_cores,
        "steal_cores": c.steal_cores,
        "load_avg_1m": [load0, os.getloadavg()[0]],
        "wall_s": c.wall_s,
    }
    return measured, machine


def measure(point: Point, s: RunSettings, out: Path, repeat: int = 0) -> dict[str, Any]:
    """The cached record of a point (running the executor when there is none).

    The run waits for a quiet machine (``quiet_cores``) and is repeated up to ``retries`` times
    while other processes used more than ``max_foreign_cores`` cores during it; the least
    contended attempt is kept (every attempt's contention is recorded).
    """
    key = f"{point.key}_r{repeat}"
    record_path = out / "points" / f"{key}.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if (
            record.get("settings") == s.key(point, repeat)
            and record.get("policy") == point.policy.to_dict()
        ):
            return record
    policy_file = out / "policies" / f"{point.key}.json"
    point.policy.save(policy_file)
    trace = out / "traces" / f"{key}.jsonl"
    best: tuple[dict, dict] | None = None
    attempts = []
    for attempt in range(s.retries + 1):
        tmp_trace = trace.with_suffix(f".try{attempt}.jsonl")
        measured, machine = _run_once(
            executor_argv(point, s, policy_file, tmp_trace, repeat), key, s
        )
        attempts.append(machine)
        foreign = machine["foreign_cores"] if machine["foreign_cores"] is not None else 0.0
        if best is None or foreign < (best[1]["foreign_cores"] or 0.0):
            best = (measured, machine)
            tmp_trace.replace(trace)
        else:
            tmp_trace.unlink(missing_ok=True)
        if foreign <= s.max_foreign_cores:
            break
    measured, machine = best
    record = {
        "key": key,
        "label": point.label,
        "policy": point.policy.to_dict(),
        "batch_size": point.batch_size,
        "temperature": point.temperature,
        "settings": s.key(point, repeat),
        "argv": executor_argv(point, s, policy_file, trace, repeat),
        "measured": measured,
        "trace": str(trace),
        **machine,
        "attempts": attempts,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    record_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(record_path)
    return record
