"""Are the two devices independent? Each model's forwards timed alone and while the other works.

    python studies/bench_contention.py                 # 40 rounds, embedded pair, two CPU cores
    python studies/bench_contention.py --rounds 80 --forwards 32

SSD assumes the draft's device works without slowing the target's. Two worker processes, as
``executor.profile`` places them (the target on the first core or ``cuda:0``, the draft on the
second or ``cuda:1``), each with one torch thread, time ``--forwards`` decode forwards of their
model (one sequence, one token, a 64-token cache: ``executor.probe``'s point) in every round
under each condition, in a rotating order:

- ``alone``: the other worker idles;
- ``other model``: the other worker runs its representative loop (the target verifying 5 tokens
  a row, the draft a 12-branch tree step, as ``executor.profile`` keeps it busy);
- ``other spin``: the other worker spins in plain Python (no memory traffic, no torch).

Prints each condition's median, 10th and 90th percentile of seconds per forward, and the
round-by-round ratio to ``alone``: its median and the share of rounds above 1.5 (the forward
at least half again as slow). On two independent devices the ratios stay near 1; a slowdown
under ``other spin`` means the cores share more than memory (on a VM: the hypervisor
co-schedules them). Wall time, as the engines see it. Loads both models; never ssdsim.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import statistics
import time
from typing import Any

from tqdm import tqdm

from executor.loader import resolve_pair
from executor.profile import worker_placement

log = logging.getLogger("bench_contention")

BUSY_POINTS = {"target": ("forward", (1, 5, 128)), "draft": ("tree", (1, 12, 128))}
CONDITIONS = ("alone", "other model", "other spin")


def _worker(role: str, model_dir: str, core: int | None, device: str, conn: Any) -> None:
    """Pin, load the model, then answer ``time`` / ``model`` / ``spin`` / ``stop`` commands."""
    from executor.model.decoder import Decoder
    from executor.probe import time_forwards
    from executor.profile_worker import busy, pin

    pin(core, device)
    model = Decoder.from_dir(model_dir, device=device)
    conn.send("ready")
    while True:
        cmd, arg = conn.recv()
        if cmd == "stop":
            return
        if cmd == "time":
            conn.send(time_forwards(model, forwards=arg, warmup=2)[0])
        elif cmd == "model":
            kind, point = BUSY_POINTS[role]
            busy(model, kind, point, conn)  # until the next message, which it consumes
            conn.send("idle")
        elif cmd == "spin":
            n = 0
            while not conn.poll():
                n += 1
            conn.recv()
            conn.send("idle")


def _round(conns: dict[str, Any], role: str, cond: str, forwards: int) -> float:
    """Seconds per forward of ``role`` under ``cond`` (the other worker idle, busy or spinning)."""
    other = "draft" if role == "target" else "target"
    if cond != "alone":
        conns[other].send(("model" if cond == "other model" else "spin", None))
        time.sleep(0.01)  # let it start
    conns[role].send(("time", forwards))
    seconds = conns[role].recv()
    if cond != "alone":
        conns[other].send(("done", None))
        conns[other].recv()
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pair", default="embedded", help="model pair (default: embedded)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--rounds", type=int, default=40, help="rounds (default 40)")
    ap.add_argument("--forwards", type=int, default=16, help="forwards timed per probe (16)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.rounds < 2 or args.forwards < 1:
        ap.error(f"--rounds {args.rounds} (>= 2), --forwards {args.forwards} (>= 1)")
    pair = resolve_pair(args.pair)
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    placement = worker_placement(device)
    dirs = {"target": str(pair.target_dir), "draft": str(pair.draft_dir)}
    ctx = mp.get_context("spawn")
    conns, procs = {}, []
    for role, (core, dev) in placement.items():
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(role, dirs[role], core, dev, child), daemon=True)
        p.start()
        conns[role], procs = parent, [*procs, p]
    for c in conns.values():
        c.recv()
    log.info(
        "placement: %s", {r: f"core {c}" if c is not None else d for r, (c, d) in placement.items()}
    )
    times: dict[tuple[str, str], list[float]] = {(r, c): [] for r in placement for c in CONDITIONS}
    try:
        for i in tqdm(range(args.rounds), desc="rounds", unit="round"):
            for j in range(len(CONDITIONS)):
                cond = CONDITIONS[(i + j) % len(CONDITIONS)]
                for role in placement:
                    times[(role, cond)].append(_round(conns, role, cond, args.forwards))
    finally:
        for c in conns.values():
            c.send(("stop", None))
        for p in procs:
            p.join(timeout=10)
    for role in placement:
        alone = times[(role, "alone")]
        for cond in CONDITIONS:
            t = sorted(times[(role, cond)])
            q = statistics.quantiles(t, n=10)
            line = (
                f"{role:6s} {cond:11s} ms/forward median {statistics.median(t) * 1e3:7.3f}"
                f"  p10 {q[0] * 1e3:7.3f}  p90 {q[-1] * 1e3:7.3f}"
            )
            if cond != "alone":
                ratios = [b / a for a, b in zip(alone, times[(role, cond)], strict=True)]
                slow = sum(r > 1.5 for r in ratios) / len(ratios)
                line += f"  ratio to alone: median {statistics.median(ratios):.2f}, "
                line += f"above 1.5 in {slow:.0%} of rounds"
            log.info(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
