"""Link benchmark: round trip of a small message between two pinned processes, gloo vs shared memory.

Why SSD's control messages use ``executor.ssd.mailbox``: the same 64-float64 message goes back
and forth ``--pings`` times through a gloo process group (``executor.ssd.transport.Pipe``) and
through a shared-memory counter that the waiting side polls. Both processes run one torch
thread, pinned to cores 0 and 1. Prints p50 and p99 of each in microseconds, then one JSON line.
Run it under the machine lock: both sides need their core.

    python studies/bench_link.py --pings 1000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from executor.ssd.transport import Pipe, make_store, new_shared_path


def _peer(port: int, path: str, pings: int) -> None:
    os.sched_setaffinity(0, {1})
    torch.set_num_threads(1)
    pipe = Pipe(make_store(port, is_server=False, timeout_s=60), 1, "gloo", timeout_s=60)
    buf = torch.zeros(64, dtype=torch.float64)
    for _ in range(pings + 1):
        pipe.recv(buf)
        pipe.send(buf)
    counters = np.memmap(path, dtype=np.int64, mode="r+", shape=(2,))
    for i in range(1, pings + 2):
        while counters[0] < i:
            pass
        counters[1] = i


def _summary(times_s: list[float]) -> dict[str, float]:
    us = sorted(t * 1e6 for t in times_s)
    return {
        "p50_us": statistics.median(us),
        "p99_us": us[min(len(us) - 1, round(0.99 * len(us)))],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pings", type=int, default=1000)
    args = p.parse_args(argv)
    store = make_store(0, is_server=True, timeout_s=60)
    path = new_shared_path()
    np.memmap(path, dtype=np.int64, mode="w+", shape=(2,)).flush()
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_peer, args=(store.port, str(path), args.pings), daemon=True)
    proc.start()
    try:
        pipe = Pipe(store, 0, "gloo", timeout_s=60)
        os.sched_setaffinity(0, {0})
        buf = torch.zeros(64, dtype=torch.float64)
        gloo = []
        for _ in range(args.pings + 1):
            t0 = time.perf_counter()
            pipe.send(buf)
            pipe.recv(buf)
            gloo.append(time.perf_counter() - t0)
        counters = np.memmap(path, dtype=np.int64, mode="r+", shape=(2,))
        shm = []
        for i in range(1, args.pings + 2):
            t0 = time.perf_counter()
            counters[0] = i
            while counters[1] < i:
                pass
            shm.append(time.perf_counter() - t0)
        proc.join(10)
    finally:
        if proc.is_alive():
            proc.kill()
        path.unlink(missing_ok=True)
    result = {"gloo": _summary(gloo[1:]), "shared_memory": _summary(shm[1:]), "pings": args.pings}
    for name in ("gloo", "shared_memory"):
        r = result[name]
        print(f"{name:>13}: p50 {r['p50_us']:8.1f} us  p99 {r['p99_us']:8.1f} us")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
