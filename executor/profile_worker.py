"""The measuring process of ``python -m executor.profile``: one model device, one command at a time.

A worker pins itself to one CPU core with one torch thread (or uses its CUDA device), loads the
models it is given (``executor.model.decoder.Decoder``) and serves commands from its pipe:

- ``grid``: seconds of forwards at a list of (batch, tokens, context) points, visited
  round-robin (every round times each point once) so that a burst of load from elsewhere hits
  all points alike; ``kind`` ``forward`` is ``Decoder.forward`` as the engines call it (one token:
  logits of that token; more: logits of all; rows of a batch at different lengths, up to 15
  tokens below the context), ``tree`` is one ``forward_branches`` step of
  batch x tokens branches over a trunk of ``context`` tokens (the attention's kv_len).
- ``busy``: the model's representative loop (the other device's work in SSD), until the next
  message arrives; returns the number of forwards run.
- ``link``: gloo ping-pong between the two workers; rank 0 returns one-way seconds
  per message size.
- ``host``: AR and SD decoding (``executor.engines``) of random prompts; returns one record per
  full-batch step (``ssdsim.profile.HOST_STEP_FIELDS``).

Imports torch, executor and the ssdsim contracts only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch

from executor.engines.ar import AREngine
from executor.engines.common import Sampling, generate
from executor.engines.sd import SDEngine
from executor.model.decoder import Decoder

Point = tuple[int, int, int]


def pin(core: int | None, device: str) -> None:
    """One torch thread, on ``core`` when given (CPU devices)."""
    torch.set_num_threads(1)
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))


def _sync(model: Decoder) -> None:
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)


class Bench:
    """Reusable caches and inputs for timing one model's forwards (largest shapes allocated once)."""

    def __init__(self, model: Decoder, points: list[Point], kind: str) -> None:
        self.model, self.kind = model, kind
        capacity = max(c for _, _, c in points) + 2
        self.caches = {b: model.new_cache(b, capacity) for b in {p[0] for p in points}}
        gen = torch.Generator().manual_seed(0)
        vocab = model.config.vocab_size
        self.tokens = {
            (b, n): torch.randint(0, vocab, (b * n,), generator=gen).to(model.device)
            for b, n, _ in points
        }
        if kind == "tree":
            most = max(b * n for b, n, _ in points)
            self.scratch = model.new_scratch(most, 1)

    def call(self, point: Point) -> Callable[[], Any]:
        b, n, c = point
        m, cache, toks = self.model, self.caches[b], self.tokens[(b, n)]
        if self.kind == "tree":
            trunk_len = torch.full((b * n,), c, dtype=torch.long, device=m.device)
            return lambda: m.forward_branches(toks, cache, trunk_len, self.scratch, 0, kv_len=c)
        # Rows at different lengths, as after prompts of different lengths and verification
        # (the attention then needs its mask): row i ends up to 15 tokens short of c.
        start = c - n - (torch.arange(b, device=m.device) * 7) % 16
        x = toks.view(b, n)
        at = 0 if n == 1 else None
        return lambda: m.forward(x, start, cache, logits_at=at)


def faster_half_mean(times: list[float]) -> float:
    """Mean of the faster half of repeated timings: robust to bursts of load from other processes."""
    fast = sorted(times)[: max(1, (len(times) + 1) // 2)]
    return sum(fast) / len(fast)


def time_grid(model: Decoder, kind: str, points: list[Point], rounds: int) -> list[float]:
    """Seconds per point over ``rounds`` round-robin visits (after one warm-up round): the mean
    of the faster half. On CPU the thread's CPU time (one torch thread), so that time the
    scheduler gave to other processes on a shared machine does not count; on CUDA wall time."""
    bench = Bench(model, points, kind)
    calls = [bench.call(p) for p in points]
    clock = time.perf_counter if model.device.type == "cuda" else time.thread_time
    times: list[list[float]] = [[] for _ in points]
    with torch.inference_mode():
        for r in range(rounds + 1):
            for i, call in enumerate(calls):
                _sync(model)
                t0 = clock()
                call()
                _sync(model)
                if r:
                    times[i].append(clock() - t0)
    return [faster_half_mean(t) for t in times]


def busy(model: Decoder, kind: str, point: Point, conn: Any) -> int:
    """Run the representative loop until a message arrives on ``conn``; returns the forwards run."""
    call = Bench(model, [point], kind).call(point)
    count = 0
    with torch.inference_mode():
        while not conn.poll():
            call()
            _sync(model)
            count += 1
    conn.recv()
    return count


def link(rank: int, port: int, sizes: list[int], reps: int) -> list[tuple[int, float]]:
    """Gloo ping-pong of ``sizes`` bytes between ranks 0 and 1; rank 0 returns one-way seconds."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    out = []
    try:
        for size in sizes:
            buf = torch.zeros(size, dtype=torch.uint8)
            rtts = []
            for i in range(reps + 3):
                t0 = time.perf_counter()
                if rank == 0:
                    dist.send(buf, 1)
                    dist.recv(buf, 1)
                else:
                    dist.recv(buf, 0)
                    dist.send(buf, 0)
                if i >= 3:
                    rtts.append(time.perf_counter() - t0)
            out.append((size, faster_half_mean(rtts) / 2))
    finally:
        dist.destroy_process_group()
    return out


def host_steps(
    target: Decoder,
    draft: Decoder,
    batch_sizes: list[int],
    ks: list[int],
    prompt_len: int,
    new_tokens: int,
) -> list[dict[str, Any]]:
    """Greedy AR and SD (each k) decoding of random prompts; one record per full-batch step."""
    gen = torch.Generator().manual_seed(1)
    vocab = target.config.vocab_size
    out: list[dict[str, Any]] = []
    for b in batch_sizes:
        prompts = [torch.randint(0, vocab, (prompt_len,), generator=gen).tolist() for _ in range(b)]
        for k in [0, *ks]:
            sampling = Sampling(seed=0)
            engine = AREngine(target, sampling) if k == 0 else SDEngine(target, draft, sampling, k)
            res = generate(
                engine, prompts, batch_size=b, max_new_tokens=new_tokens, sampling=sampling
            )
            context = float(prompt_len)
            for s in res.steps:
                if len(s.seqs) == b:
                    out.append(
                        {
                            "mode": "sd" if k else "ar",
                            "batch": b,
                            "k": k,
                            "context": context,
                            "step_s": s.t_end_s - s.t_start_s,
                            "draft_s": s.draft_s,
                            "verify_s": s.verify_s,
                        }
                    )
                context += sum(o.emitted_tokens for o in s.seqs) / len(s.seqs)
    return out


def serve(role: str, model_dirs: dict[str, str], core: int | None, device: str, conn: Any) -> None:
    """The worker process: pin, load, then answer commands until ``stop``."""
    pin(core, device)
    models = {name: Decoder.from_dir(d, device=device) for name, d in model_dirs.items()}
    conn.send(("ready", role))
    while True:
        cmd, args = conn.recv()
        if cmd == "stop":
            return
        try:
            if cmd == "grid":
                result: Any = time_grid(
                    models[args["model"]], args["kind"], args["points"], args["rounds"]
                )
            elif cmd == "busy":
                result = busy(models[args["model"]], args["kind"], args["point"], conn)
            elif cmd == "link":
                result = link(args["rank"], args["port"], args["sizes"], args["reps"])
            elif cmd == "host":
                result = host_steps(models["target"], models["draft"], **args)
            else:
                raise ValueError(f"unknown command {cmd!r}")
            conn.send(("ok", result))
        except Exception as exc:  # reported to the parent, which raises it
            conn.send(("error", f"{role} worker, {cmd}: {exc!r}"))
