"""``python -m executor.profile``: measure the latency part of a Profile for a model pair.

    python -m executor.profile --pair embedded -o latency.json
    python -m executor.profile --pair smoke --quick -o /tmp/latency.json

Two worker processes (``executor.profile_worker``), one per device as in SSD: on CPU each pinned
to its own core with one torch thread; with CUDA the target on cuda:0 and the draft on cuda:1
(cuda:0 when there is one GPU). Measured, with the other device busy running its own
representative loop (as while SSD overlaps them):

- target forwards over batch x tokens x context (tokens: 1 for AR and jit, k+1 for verify);
- draft forwards over the same axes (1: drafting and jit, 2: SD's first draft forward, k+1:
  the glue forward) and SSD tree steps (batch x branches per sequence M x trunk context);
- the link: gloo message round trips between the two processes, per size;
- AR and SD decode steps (``executor.engines``), from which ``ssdsim.calibrate`` takes the
  target's host work per step beside its forwards.

Writes ``ssdsim.profile.LatencyMeasurements`` (measured grids; ``python -m ssdsim.calibrate
--latency FILE`` fits the formulas and merges them into a Profile). Every argument and the pair
are checked before any model loads. Imports torch, executor and the ssdsim contracts only.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import platform
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from executor.loader import ModelPair, resolve_pair
from executor.profile_worker import Point, serve
from ssdsim.profile import ForwardLatency, LatencyGrid, LatencyMeasurements, LinkLatency

log = logging.getLogger(__name__)
LINK_SIZES = (8, 64, 512, 4096, 32768, 262144, 1048576)


class ProfileError(ValueError):
    """Bad command-line input (reported before any model loads)."""


@dataclass(frozen=True)
class Settings:
    """What to measure: grid axes, repetitions and devices."""

    batch_sizes: tuple[int, ...] = (1, 2, 4, 8)
    ks: tuple[int, ...] = (2, 4, 6, 8)
    contexts: tuple[int, ...] = (64, 256, 512)
    budgets: tuple[int, ...] = (1, 4, 8, 16, 32, 48)  # 1: sparse trees (one branch a step)
    rounds: int = 9
    link_reps: int = 100
    host_tokens: int = 48
    device: str = "cpu"

    @property
    def target_tokens(self) -> tuple[int, ...]:
        return tuple(sorted({1, *(k + 1 for k in self.ks)}))

    @property
    def draft_tokens(self) -> tuple[int, ...]:
        return tuple(sorted({1, 2, *(k + 1 for k in self.ks)}))


QUICK = Settings(
    batch_sizes=(1, 2),
    ks=(2,),
    contexts=(32, 64),
    budgets=(2, 4),
    rounds=2,
    link_reps=5,
    host_tokens=6,
)


def _ints(text: str, flag: str, low: int = 1) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        values = ()
    if not values or values[0] < low:
        raise ProfileError(
            f"{flag} {text!r}: expected comma-separated integers >= {low}, e.g. 1,2,4"
        )
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m executor.profile", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--pair", required=True, help="embedded, smoke, a pair directory, or TARGET_DIR,DRAFT_DIR"
    )
    p.add_argument("-o", "--out", type=Path, required=True, help="latency JSON to write")
    p.add_argument("--batch-sizes", help="default 1,2,4,8")
    p.add_argument(
        "--ks", help="lookaheads whose verify/glue shapes (k+1 tokens) to measure; default 2,4,6,8"
    )
    p.add_argument("--contexts", help="context tokens per sequence; default 64,256,512")
    p.add_argument("--budgets", help="tree branches per sequence M; default 1,4,8,16,32,48")
    p.add_argument("--rounds", type=int, help="timed visits of every grid point; default 9")
    p.add_argument("--device", default="cpu", help="cpu (two pinned cores) or cuda")
    p.add_argument("--quick", action="store_true", help="a tiny grid for tests (seconds)")
    return p


def settings_from_args(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else Settings()
    kw: dict[str, Any] = {"device": args.device}
    for name in ("batch_sizes", "ks", "contexts", "budgets"):
        if getattr(args, name) is not None:
            kw[name] = _ints(getattr(args, name), f"--{name.replace('_', '-')}")
    if args.rounds is not None:
        if args.rounds < 1:
            raise ProfileError(f"--rounds {args.rounds}: expected an integer >= 1")
        kw["rounds"] = args.rounds
    if args.device not in ("cpu", "cuda"):
        raise ProfileError(f"--device {args.device!r}: expected cpu or cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ProfileError("--device cuda: CUDA is not available on this machine")
    s = Settings(**{**base.__dict__, **kw})
    if min(s.contexts) <= max(s.draft_tokens):
        raise ProfileError(
            f"--contexts {list(s.contexts)}: each must exceed the largest forward ({max(s.draft_tokens)} tokens)"
        )
    return s


def worker_placement(device: str) -> dict[str, tuple[int | None, str]]:
    """Core (CPU) or device (CUDA) of each worker."""
    if device == "cuda":
        second = "cuda:1" if torch.cuda.device_count() > 1 else "cuda:0"
        return {"target": (None, "cuda:0"), "draft": (None, second)}
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        log.warning("fewer than two cores available: both workers share one; overlap is not real")
        cores = (cores or [None]) * 2  # type: ignore[list-item]
    return {"target": (cores[0], "cpu"), "draft": (cores[1], "cpu")}


class Workers:
    """The two worker processes; use as a context manager (they stop on exit)."""

    def __init__(self, pair: ModelPair, device: str) -> None:
        ctx = mp.get_context("spawn")
        dirs = {
            "target": {"target": str(pair.target_dir), "draft": str(pair.draft_dir)},
            "draft": {"draft": str(pair.draft_dir)},
        }
        self.conns: dict[str, Any] = {}
        self.procs: list[Any] = []
        self.placement = worker_placement(device)
        for role, (core, dev) in self.placement.items():
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=serve, args=(role, dirs[role], core, dev, child), daemon=True)
            proc.start()
            self.conns[role] = parent
            self.procs.append(proc)
        for conn in self.conns.values():
            conn.recv()  # ("ready", role)

    def send(self, role: str, cmd: str, **args: Any) -> None:
        self.conns[role].send((cmd, args))

    def result(self, role: str) -> Any:
        status, value = self.conns[role].recv()
        if status != "ok":
            raise RuntimeError(value)
        return value

    def while_busy(self, role: str, other: str, cmd: str, busy: dict, **args: Any) -> Any:
        """Run ``cmd`` on ``role`` while ``other`` runs its representative loop."""
        self.send(other, "busy", **busy)
        self.send(role, cmd, **args)
        value = self.result(role)
        self.conns[other].send(("stop-busy", {}))
        self.result(other)
        return value

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        for conn in self.conns.values():
            try:
                conn.send(("stop", {}))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()


def _grid(axes: tuple[tuple[int, ...], ...], seconds: list[float]) -> ForwardLatency:
    shape = tuple(len(a) for a in axes)
    table = np.asarray(seconds).reshape(shape).tolist()
    return ForwardLatency(grid=LatencyGrid(*axes, seconds=table))


def _points(axes: tuple[tuple[int, ...], ...]) -> list[Point]:
    return [(b, n, c) for b in axes[0] for n in axes[1] for c in axes[2]]


def measure(pair: ModelPair, s: Settings) -> LatencyMeasurements:
    """Measure everything (see the module docstring) and return it."""
    t_axes = (s.batch_sizes, s.target_tokens, s.contexts)
    d_axes = (s.batch_sizes, s.draft_tokens, s.contexts)
    tree_axes = (s.batch_sizes, s.budgets, s.contexts)
    b_mid, c_mid = s.batch_sizes[len(s.batch_sizes) // 2], s.contexts[len(s.contexts) // 2]
    target_busy = {
        "model": "target",
        "kind": "forward",
        "point": (b_mid, s.target_tokens[-1] // 2 + 1, c_mid),
    }
    draft_busy = {
        "model": "draft",
        "kind": "tree",
        "point": (b_mid, s.budgets[len(s.budgets) // 2], c_mid),
    }
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    with Workers(pair, s.device) as w:
        log.info("target grid: %d points x %d rounds", len(_points(t_axes)), s.rounds)
        target = w.while_busy(
            "target",
            "draft",
            "grid",
            draft_busy,
            model="target",
            kind="forward",
            points=_points(t_axes),
            rounds=s.rounds,
        )
        log.info("draft grid: %d points", len(_points(d_axes)))
        draft = w.while_busy(
            "draft",
            "target",
            "grid",
            target_busy,
            model="draft",
            kind="forward",
            points=_points(d_axes),
            rounds=s.rounds,
        )
        log.info("tree grid: %d points", len(_points(tree_axes)))
        tree = w.while_busy(
            "draft",
            "target",
            "grid",
            target_busy,
            model="draft",
            kind="tree",
            points=_points(tree_axes),
            rounds=s.rounds,
        )
        log.info("host steps")
        host = w.while_busy(
            "target",
            "draft",
            "host",
            draft_busy,
            batch_sizes=list(s.batch_sizes),
            ks=list(s.ks),
            prompt_len=s.contexts[0],
            new_tokens=s.host_tokens,
        )
        log.info("link")
        samples = _link(w, s.link_reps)
    fixed, per_byte = _fit_link(samples)
    return LatencyMeasurements(
        target=_grid(t_axes, target),
        draft=_grid(d_axes, draft),
        draft_tree=_grid(tree_axes, tree),
        link=LinkLatency(fixed_s=fixed, per_byte_s=per_byte),
        link_samples=tuple((float(b), float(t)) for b, t in samples),
        host_steps=tuple(host),
        provenance=_provenance(pair, s, load0, time.perf_counter() - t0),
    )


def _link(w: Workers, reps: int) -> list[tuple[int, float]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = {"port": port, "sizes": list(LINK_SIZES), "reps": reps}
    w.send("draft", "link", rank=1, **args)
    w.send("target", "link", rank=0, **args)
    out = w.result("target")
    w.result("draft")
    return out


def _fit_link(samples: list[tuple[int, float]]) -> tuple[float, float]:
    """One-way seconds = fixed + per_byte * bytes (least squares, both kept >= 0)."""
    x = np.array([b for b, _ in samples], dtype=float)
    y = np.array([t for _, t in samples])
    per_byte, fixed = np.polyfit(x, y, 1)
    per_byte = max(per_byte, 0.0)
    fixed = max(float(np.median(y[x <= 4096] - per_byte * x[x <= 4096])), 0.0)
    return fixed, float(per_byte)


def _provenance(pair: ModelPair, s: Settings, load0: tuple, seconds: float) -> dict[str, Any]:
    return {
        "tool": "python -m executor.profile",
        "models": {"pair": pair.name, "target": str(pair.target_dir), "draft": str(pair.draft_dir)},
        "devices": {
            role: (dev if core is None else f"cpu core {core}, 1 torch thread")
            for role, (core, dev) in worker_placement(s.device).items()
        },
        "cpu": platform.processor() or platform.machine(),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in s.__dict__.items()},
        "statistic": "mean of the faster half of the rounds (thread CPU time on CPU, wall time on CUDA), points visited round-robin, other device busy",
        "load_avg_1m": {"start": load0[0], "end": os.getloadavg()[0]},
        "measure_s": round(seconds, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        settings = settings_from_args(args)
        pair = resolve_pair(args.pair)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = measure(pair, settings)
    result.save(args.out)
    grid = result.target.grid
    print(
        f"wrote {args.out}: target {len(grid.batch) * len(grid.tokens) * len(grid.context)} points, "
        f"link {result.link.fixed_s * 1e6:.0f} us + {result.link.per_byte_s * 1e9:.2f} ns/byte, "
        f"{len(result.host_steps)} host steps, {result.provenance['measure_s']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
