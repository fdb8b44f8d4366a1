"""The draft worker process: load the draft, then serve requests and pre-speculate until EXIT.

Started by ``RemoteDraft`` (``multiprocessing`` spawn) with a ``WorkerConfig``. It dies with its
parent (Linux ``PR_SET_PDEATHSIG``), ignores SIGINT (a terminal's Ctrl-C goes to the whole
process group; the parent decides and stops it), pins itself to its core with one torch thread,
reports ``worker_up`` (or ``worker_error``) in the rendezvous store, and loops:

    take a command from the mailbox -> PING: answer | PROBE: time draft forwards (the speed
    of the draft's core, ``executor.probe``), answer | PREFILL: receive the prompts (process
    group), prefill the trunk | SPEC: serve (lookup, jit or fast), answer, then pre-speculate
    until done or until the next command is posted (the doorbell) | FINISH: last ranks | EXIT

With the cache in shared memory (a CPU draft), SPEC answers only for jit rows (the target read
the cache itself), ranks the previous bonus, pre-speculates until done or until the target
rings (``SharedCache.ring``) or posts a command, then publishes the cache.

Answering before pre-speculating is the whole point: the target verifies while this process
builds the next step's cache. Imports torch and executor only.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass

import torch

from executor.model.decoder import Decoder
from executor.probe import time_forwards
from executor.ssd.mailbox import Mailbox
from executor.ssd.protocol import (
    Cmd,
    DraftTimes,
    pack_response,
    request_numel,
    response_numel,
    unpack_prompts,
    unpack_request,
)
from executor.ssd.shared_cache import SharedCache, SharedCachePaths
from executor.ssd.speculator import DraftSpeculator, SpecConfig
from executor.ssd.transport import Pipe, make_store, shared_tensor

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerConfig:
    draft_dir: str
    device: str
    dtype: str  # "float32" | "bfloat16"
    core: int | None
    threads: int
    port: int
    backend: str
    spec: SpecConfig
    max_batch: int
    vocab_size: int
    q_path: str | None
    box_path: str
    parent_pid: int
    startup_timeout_s: float
    shared: SharedCachePaths | None = None  # the speculation cache in shared memory (CPU draft)


def _die_with_parent(parent_pid: int) -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the parent's close() and daemon flag remain
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit(1)


def worker_main(cfg: WorkerConfig) -> None:
    """Process entry point (see the module docstring)."""
    _die_with_parent(cfg.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="draft worker %(levelname)s: %(message)s")
    torch.set_num_threads(cfg.threads)
    store = make_store(cfg.port, is_server=False, timeout_s=cfg.startup_timeout_s)
    try:
        dtype = torch.bfloat16 if cfg.dtype == "bfloat16" else torch.float32
        draft = Decoder.from_dir(cfg.draft_dir, device=cfg.device, dtype=dtype)
        shared = None
        factory = None
        if cfg.shared is not None:
            shared = SharedCache(
                cfg.shared,
                max_batch=cfg.max_batch,
                budget=cfg.spec.budget,
                k=cfg.spec.k,
                vocab_size=cfg.vocab_size,
            )
            factory = lambda b: shared.spec_cache(b, cfg.vocab_size)  # noqa: E731
        speculator = DraftSpeculator(draft, cfg.spec, factory)
        q = None
        if cfg.spec.ship_q:
            shape = (cfg.max_batch, cfg.spec.k, cfg.vocab_size)
            q = (
                shared_tensor(cfg.q_path, shape)
                if cfg.q_path
                else torch.zeros(shape, device=cfg.device)
            )
        k = cfg.spec.k
        box = Mailbox(
            cfg.box_path, request_numel(cfg.max_batch, k), response_numel(cfg.max_batch, k)
        )
    except Exception as exc:  # report, then exit: the parent raises with this message
        store.set("worker_error", f"{type(exc).__name__}: {exc}")
        raise
    store.set("worker_up", "1")
    pipe = Pipe(store, 1, cfg.backend, timeout_s=cfg.startup_timeout_s)
    if cfg.core is not None:  # this thread only: the link's I/O threads float
        os.sched_setaffinity(0, {cfg.core})
    with torch.inference_mode():
        serve_forever(pipe, box, speculator, cfg, q, shared)


def serve_forever(
    pipe: Pipe,
    box: Mailbox,
    spec: DraftSpeculator,
    cfg: WorkerConfig,
    q: torch.Tensor | None,
    shared: SharedCache | None = None,
) -> None:
    """The command loop; returns on EXIT (or when the parent is gone), raises if the link breaks.

    With a shared cache, a SPEC is answered only when missed rows need jit tokens (the target
    looked its key up itself); the previous step's bonus ranks are computed after serving and
    published with the cache when the pre-speculation ends."""
    k = cfg.spec.k
    specs = 0
    req_buf = torch.zeros(request_numel(cfg.max_batch, k), dtype=torch.float64)
    resp_buf = torch.zeros(response_numel(cfg.max_batch, k), dtype=torch.float64)
    prev = (0.0,) * 5  # the last pre-speculation: start, end, glue_s, tree_s, depth
    parent_alive = _parent_check(cfg.parent_pid)
    between_batches = True  # no request is due soon: wait without spinning on the core
    while True:
        box.take(req_buf, alive=parent_alive, spin=not between_batches)
        got = time.perf_counter()
        cmd = Cmd(int(req_buf[0]))
        between_batches = cmd == Cmd.FINISH  # (pings come in bursts: keep spinning)
        if cmd == Cmd.EXIT:
            return
        if cmd == Cmd.PING:
            box.answer(resp_buf)
            continue
        if cmd == Cmd.PROBE:
            wall, cpu = time_forwards(spec.draft, int(req_buf[1]), int(req_buf[2]))
            resp_buf[1], resp_buf[2] = wall, cpu
            box.answer(resp_buf)
            continue
        if cmd == Cmd.PREFILL:
            _prefill(pipe, spec, req_buf, cfg)
            prev = (0.0,) * 5
            continue
        _, _, req = unpack_request(req_buf.to(spec.device), k)
        if cmd == Cmd.FINISH:
            resp = spec.finish(req)
            resp.times = DraftTimes(got, time.perf_counter(), 0.0, *prev)
            box.answer(pack_response(resp_buf, resp))
            continue
        if shared is not None:
            specs += 1
            _serve_shared(box, spec, req, q, shared, specs, resp_buf, got)
            continue
        resp, jit_s = spec.serve(req, q)
        resp.times = DraftTimes(got, time.perf_counter(), jit_s, *prev)
        box.answer(pack_response(resp_buf, resp))
        if q is not None and cfg.backend == "nccl":
            pipe.send(q[: req.batch_size])
        start = time.perf_counter()
        glue_s, tree_s, depth = spec.prespeculate(box.pending)
        prev = (start, time.perf_counter(), glue_s, tree_s, depth)


def _serve_shared(
    box: Mailbox,
    spec: DraftSpeculator,
    req,
    q: torch.Tensor | None,
    shared: SharedCache,
    count: int,
    resp_buf: torch.Tensor,
    got: float,
) -> None:
    """One SPEC with the cache in shared memory: jit answer if needed, ranks, tree, publish."""
    resp, jit_s = spec.serve(req, q, rank=False)
    if spec.jit and bool((~resp.cache_hit & req.live).any()):
        resp.times = DraftTimes(got, time.perf_counter(), jit_s)
        box.answer(pack_response(resp_buf, resp))
    ranks = spec.prev_ranks(req)
    start = time.perf_counter()
    glue_s, tree_s, depth = spec.prespeculate(lambda: box.pending() or shared.stop_requested(count))
    shared.publish(count, spec.cache, ranks, (start, time.perf_counter(), glue_s, tree_s, depth))


def _parent_check(parent_pid: int):
    def alive() -> bool:
        return os.getppid() == parent_pid

    return alive


def _prefill(pipe: Pipe, spec: DraftSpeculator, header: torch.Tensor, cfg: WorkerConfig) -> None:
    """PREFILL's header holds B, total prompt tokens, capacity, jit; the prompts follow."""
    b, total, capacity, jit = (int(x) for x in header[1:5].tolist())
    msg_dev = cfg.device if cfg.backend == "nccl" else "cpu"
    payload = torch.zeros(2 * b + total, dtype=torch.float64, device=msg_dev)
    pipe.recv(payload)
    prompts, seq_ids = unpack_prompts(payload.cpu(), b)
    spec.start_batch(prompts, seq_ids, capacity, jit=bool(jit))
