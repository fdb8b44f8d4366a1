"""The draft worker process: load the draft, then serve requests and pre-speculate until EXIT.

Started by ``RemoteDraft`` (``multiprocessing`` spawn) with a ``WorkerConfig``. It dies with its
parent (Linux ``PR_SET_PDEATHSIG``), ignores SIGINT (a terminal's Ctrl-C goes to the whole
process group; the parent decides and stops it), pins itself to its core with one torch thread,
reports ``worker_up`` (or ``worker_error``) in the rendezvous store, and loops:

    receive a command -> PING: answer | PREFILL: receive prompts, prefill the trunk |
    SPEC: serve (lookup, jit or fast), answer, then pre-speculate | FINISH: last ranks | EXIT

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
from executor.ssd.protocol import (
    Cmd,
    DraftTimes,
    pack_response,
    request_numel,
    response_numel,
    unpack_prompts,
    unpack_request,
)
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
    bell_path: str
    parent_pid: int
    startup_timeout_s: float


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
        speculator = DraftSpeculator(draft, cfg.spec)
        q = None
        if cfg.spec.ship_q:
            shape = (cfg.max_batch, cfg.spec.k, cfg.vocab_size)
            q = (
                shared_tensor(cfg.q_path, shape)
                if cfg.q_path
                else torch.zeros(shape, device=cfg.device)
            )
        bell = shared_tensor(cfg.bell_path, (1,), torch.int64)
    except Exception as exc:  # report, then exit: the parent raises with this message
        store.set("worker_error", f"{type(exc).__name__}: {exc}")
        raise
    store.set("worker_up", "1")
    pipe = Pipe(store, 1, cfg.backend, timeout_s=cfg.startup_timeout_s)
    if cfg.core is not None:  # this thread only: the link's I/O threads float
        os.sched_setaffinity(0, {cfg.core})
    with torch.inference_mode():
        serve_forever(pipe, speculator, cfg, q, bell)


def serve_forever(
    pipe: Pipe,
    spec: DraftSpeculator,
    cfg: WorkerConfig,
    q: torch.Tensor | None,
    bell: torch.Tensor,
) -> None:
    """The command loop; returns on EXIT, raises (and the process exits) if the link breaks.

    bell[0] counts the SPEC requests the target has sent: above ``served``, the next request
    is waiting and the pre-speculation stops its tree where it is.
    """
    k = cfg.spec.k
    msg_dev = cfg.device if cfg.backend == "nccl" else "cpu"
    req_buf = torch.zeros(request_numel(cfg.max_batch, k), dtype=torch.float64, device=msg_dev)
    resp_buf = torch.zeros(response_numel(cfg.max_batch, k), dtype=torch.float64, device=msg_dev)
    prev = (0.0,) * 5  # the last pre-speculation: start, end, glue_s, tree_s, depth
    served = 0
    while True:
        pipe.recv(req_buf)
        got = time.perf_counter()
        cmd = Cmd(int(req_buf[0]))
        if cmd == Cmd.EXIT:
            return
        if cmd == Cmd.PING:
            pipe.send(resp_buf)
            continue
        if cmd == Cmd.PREFILL:
            _prefill(pipe, spec, req_buf, msg_dev)
            prev = (0.0,) * 5
            continue
        _, _, req = unpack_request(req_buf.to(spec.device), k)
        if cmd == Cmd.FINISH:
            resp = spec.finish(req)
            resp.times = DraftTimes(got, time.perf_counter(), 0.0, *prev)
            pipe.send(pack_response(resp_buf, resp))
            continue
        served += 1
        resp, jit_s = spec.serve(req, q)
        resp.times = DraftTimes(got, time.perf_counter(), jit_s, *prev)
        pipe.send(pack_response(resp_buf, resp))
        if q is not None and cfg.backend == "nccl":
            pipe.send(q[: req.batch_size])
        start = time.perf_counter()
        glue_s, tree_s, depth = spec.prespeculate(lambda n=served: int(bell[0]) > n)
        prev = (start, time.perf_counter(), glue_s, tree_s, depth)


def _prefill(pipe: Pipe, spec: DraftSpeculator, header: torch.Tensor, msg_dev) -> None:
    """PREFILL's header holds B, total prompt tokens, capacity, jit; the prompts follow."""
    b, total, capacity, jit = (int(x) for x in header[1:5].tolist())
    payload = torch.zeros(2 * b + total, dtype=torch.float64, device=msg_dev)
    pipe.recv(payload)
    prompts, seq_ids = unpack_prompts(payload.cpu(), b)
    spec.start_batch(prompts, seq_ids, capacity, jit=bool(jit))
