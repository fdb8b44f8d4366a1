"""The draft in its own process: ``RemoteDraft`` (a ``DraftLink``) and ``open_engine``.

``RemoteDraft`` starts the worker (``multiprocessing`` spawn, daemon), pins this process to the
target's core (restored on close), waits for the worker's ``worker_up`` in the rendezvous store
(raising ``DraftFailure`` with the worker's own error if it fails to start), connects the
process group, and measures the handshake: ``handshake_pings`` request/response round trips
of full-size messages with no work (``handshake_s``; p50/p99 go to the run summary).

Control messages (requests, responses) go through the shared-memory ``Mailbox``; the process
group carries PREFILL's prompts and, between two GPUs, the draft distributions (NCCL); on CPU
those sit in a second shared file. With the draft on this host's CPU the speculation cache
itself lives in shared memory (``executor.ssd.shared_cache``): the target looks its key up and
copies the proposals out, then posts the request and waits only for jit-decoded rows, so a hit
or a fast miss costs no round trip (measured on the 2-core dev machine, B=1 k=2: request to
proposals 0.47 ms mean, against 1.31 ms when the worker answered every request). Between GPUs
every request is answered (the cache stays on the draft's device). Every wait for the worker lasts at most ``timeout_s`` and
notices a dead worker within ``Mailbox.check_s``: ``DraftFailure``, and the engine finishes
alone. ``close`` asks the worker to exit, then terminates and finally kills it (each within a
second), removes the shared files and restores this process's CPU affinity; it runs on every
exit path, Ctrl-C included. Imports torch and executor only.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from pathlib import Path

import torch

from executor.model.decoder import Decoder
from executor.ssd.devices import DevicePlan
from executor.ssd.engine import SSDEngine
from executor.ssd.link import DraftFailure
from executor.ssd.mailbox import Mailbox
from executor.ssd.protocol import (
    Cmd,
    DraftTimes,
    SpecRequest,
    SpecResponse,
    pack_command,
    pack_prompts,
    pack_request,
    request_numel,
    response_numel,
    unpack_response,
)
from executor.ssd.shared_cache import SharedCache
from executor.ssd.speculator import SpecConfig, spec_config
from executor.ssd.transport import LinkError, Pipe, make_store, new_shared_path, shared_tensor
from executor.ssd.worker import WorkerConfig, worker_main
from kernels.sampling import one_hot

log = logging.getLogger(__name__)


class RemoteDraft:
    """The target's end of the link to a draft worker process."""

    def __init__(
        self,
        draft_dir: str | Path,
        spec: SpecConfig,
        plan: DevicePlan,
        *,
        max_batch: int,
        vocab_size: int,
        dtype: str = "float32",
        threads: int = 1,
        timeout_s: float = 10.0,
        startup_timeout_s: float = 120.0,
        handshake_pings: int = 200,
    ) -> None:
        self.spec, self.plan, self.timeout_s = spec, plan, timeout_s
        self.description = (
            f"{plan.backend}: target {plan.describe()['target']}, draft {plan.describe()['draft']}"
        )
        self.handshake_s: list[float] = []
        self.proc = None
        self._old_affinity = None
        self._shm_paths: list[Path] = []
        self.q = None
        self.shared: SharedCache | None = None
        self._specs = 0  # SPEC requests posted (the shared cache publishes one per request)
        self.jit = True
        self._msg_dev = plan.draft if plan.backend == "nccl" else torch.device("cpu")
        try:
            self._start(draft_dir, max_batch, vocab_size, dtype, threads, startup_timeout_s)
            self._measure_handshake(handshake_pings)
        except BaseException:
            self.close()
            raise

    # -- startup -----------------------------------------------------------------------------
    def _start(self, draft_dir, max_batch, vocab_size, dtype, threads, startup_timeout_s):
        plan, k = self.plan, self.spec.k
        store = make_store(0, is_server=True, timeout_s=startup_timeout_s)
        box_path, q_path = self._shared_buffers(max_batch, vocab_size)
        cfg = WorkerConfig(
            draft_dir=str(draft_dir),
            device=str(plan.draft),
            dtype=dtype,
            core=plan.draft_core,
            threads=threads,
            port=store.port,
            backend=plan.backend,
            spec=self.spec,
            max_batch=max_batch,
            vocab_size=vocab_size,
            q_path=q_path,
            box_path=box_path,
            parent_pid=os.getpid(),
            startup_timeout_s=startup_timeout_s,
            shared=self.shared.paths if self.shared is not None else None,
        )
        ctx = multiprocessing.get_context("spawn")
        self.proc = ctx.Process(target=worker_main, args=(cfg,), daemon=True, name="ssd-draft")
        self.proc.start()
        self._wait_up(store, startup_timeout_s)
        self.pipe = Pipe(store, 0, plan.backend, timeout_s=startup_timeout_s)
        current = os.sched_getaffinity(0)  # this thread's; the link's I/O threads float
        if plan.target_core is not None and current != {plan.target_core}:
            self._old_affinity = current  # restored by whoever pinned (another link may have)
            os.sched_setaffinity(0, {plan.target_core})
        self._store = store
        self.req_buf = torch.zeros(request_numel(max_batch, k), dtype=torch.float64)
        self.resp_buf = torch.zeros(response_numel(max_batch, k), dtype=torch.float64)

    def _shared_buffers(self, max_batch: int, vocab_size: int) -> tuple[str, str | None]:
        """The mailbox, and q's buffer when the target samples (shared memory unless NCCL)."""
        k = self.spec.k
        box = new_shared_path()
        self._shm_paths.append(box)
        self.box = Mailbox(box, request_numel(max_batch, k), response_numel(max_batch, k))
        if self.plan.q_in_shared_memory:  # a draft on this host's CPU: the cache in shared memory
            self.shared = SharedCache.create(
                max_batch=max_batch,
                budget=self.spec.budget,
                k=k,
                vocab_size=vocab_size,
                with_q=self.spec.ship_q,
            )
            self._shm_paths.extend(self.shared.files())
        if not self.spec.ship_q:
            return str(box), None
        shape = (max_batch, k, vocab_size)
        if not self.plan.q_in_shared_memory:
            self.q = torch.zeros(shape, device=self._msg_dev)
            return str(box), None
        q_path = new_shared_path()
        self._shm_paths.append(q_path)
        self.q = shared_tensor(q_path, shape)
        return str(box), str(q_path)

    def _wait_up(self, store, startup_timeout_s: float) -> None:
        deadline = time.monotonic() + startup_timeout_s
        while not store.check(["worker_up"]):
            if store.check(["worker_error"]):
                raise DraftFailure(
                    f"draft worker failed to start: {store.get('worker_error').decode()}"
                )
            if not self.proc.is_alive():
                raise DraftFailure(
                    f"draft worker exited during startup (code {self.proc.exitcode})"
                )
            if time.monotonic() > deadline:
                raise DraftFailure(f"draft worker not up after {startup_timeout_s:g} s")
            time.sleep(0.005)

    def _measure_handshake(self, pings: int) -> None:
        for i in range(pings + 1):
            t0 = time.perf_counter()
            self._exchange(pack_command(self.req_buf, Cmd.PING))
            if i:  # the first one also waits for the worker's process group
                self.handshake_s.append(time.perf_counter() - t0)

    def probe(self, forwards: int = 96, warmup: int = 12) -> tuple[float, float]:
        """(wall, CPU) seconds per draft forward, timed by the worker on its own device and core
        (``executor.probe.time_forwards``) while this process waits; between batches only."""
        self._exchange(pack_command(self.req_buf, Cmd.PROBE, forwards, warmup))
        return float(self.resp_buf[1]), float(self.resp_buf[2])

    # -- the link ----------------------------------------------------------------------------
    def _alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def _post(self, buf: torch.Tensor) -> None:
        try:
            self.box.post(buf, timeout_s=self.timeout_s, alive=self._alive)
        except LinkError as exc:
            raise DraftFailure(str(exc)) from exc

    def _exchange(self, buf: torch.Tensor) -> None:
        self._post(buf)
        try:
            self.box.wait_answer(self.resp_buf, timeout_s=self.timeout_s, alive=self._alive)
        except LinkError as exc:
            raise DraftFailure(str(exc)) from exc

    def start_batch(
        self, prompts: list[list[int]], seq_ids: list[int], capacity: int, *, jit: bool
    ) -> None:
        self.jit = jit
        payload = pack_prompts(prompts, seq_ids).to(self._msg_dev)
        total = payload.numel() - 2 * len(prompts)
        self._post(pack_command(self.req_buf, Cmd.PREFILL, len(prompts), total, capacity, int(jit)))
        try:
            self.pipe.send(payload, self.timeout_s)
        except LinkError as exc:
            raise DraftFailure(str(exc)) from exc

    def _await_publication(self) -> None:
        """Wait until the worker published the cache of every request posted (ring if not yet)."""
        shared, want = self.shared, self._specs
        if shared.published() >= want:
            return
        shared.ring(want)
        try:
            self.box.wait_for(
                lambda: shared.published() >= want,
                timeout_s=self.timeout_s,
                alive=self._alive,
                what="publish its speculation cache",
            )
        except LinkError as exc:
            raise DraftFailure(str(exc)) from exc

    def _request_shared(self, req: SpecRequest, step: int) -> SpecResponse:
        """Look the key up in the shared cache, then post the request (the worker's glue input);
        wait for an answer only when missed rows need jit tokens."""
        self._await_publication()
        look = self.shared.lookup(req.seq, req.accepted_len, req.token)
        self._specs += 1
        self._post(pack_request(self.req_buf, Cmd.SPEC, req, step))
        tokens, num, q = look.tokens, look.num, look.q
        miss = ~look.hit & req.live
        served = (0.0, 0.0, 0.0)  # the worker's got, respond, jit seconds (only when it answered)
        if bool(miss.any()):
            rows = miss.nonzero()[:, 0]
            if self.jit:
                try:
                    self.box.wait_answer(self.resp_buf, timeout_s=self.timeout_s, alive=self._alive)
                except LinkError as exc:
                    raise DraftFailure(str(exc)) from exc
                answer = unpack_response(self.resp_buf, self.spec.k, None)
                if answer.tokens.shape[0] != req.batch_size:
                    raise DraftFailure(
                        f"draft answered for {answer.tokens.shape[0]} rows, asked {req.batch_size}"
                    )
                tokens.index_copy_(0, rows, answer.tokens.index_select(0, rows))
                if q is not None:
                    q.index_copy_(0, rows, self.q.index_select(0, rows))
                t = answer.times
                served = (t.got_s, t.respond_s, t.jit_s)
            else:
                fast = req.fast_tokens.index_select(0, rows)
                tokens.index_copy_(0, rows, fast)
                num.index_copy_(0, rows, req.num_fast.index_select(0, rows))
                if q is not None:
                    q.index_copy_(0, rows, one_hot(fast, q.shape[-1]))
        return SpecResponse(
            look.hit,
            tokens,
            num,
            None,
            q,
            DraftTimes(*served, *look.prespec),
            earlier_rank=look.ranks,
        )

    def request(self, req: SpecRequest, step: int) -> SpecResponse:
        if self.shared is not None:
            return self._request_shared(req, step)
        self._exchange(pack_request(self.req_buf, Cmd.SPEC, req, step))
        b = req.batch_size
        q = None
        if self.q is not None:
            q = self.q[:b]
            if not self.plan.q_in_shared_memory:
                try:
                    self.pipe.recv(q, self.timeout_s)
                except LinkError as exc:
                    raise DraftFailure(str(exc)) from exc
        resp = unpack_response(self.resp_buf, self.spec.k, q)
        if b != resp.tokens.shape[0]:
            raise DraftFailure(f"draft answered for {resp.tokens.shape[0]} rows, asked {b}")
        return _to_device(resp, req.seq.device)

    def finish(self, req: SpecRequest) -> SpecResponse:
        record = None
        if self.shared is not None:  # the last pre-speculation's times and the ranks before it
            self._await_publication()
            record = self.shared.record(req.batch_size)
        self._exchange(pack_request(self.req_buf, Cmd.FINISH, req))
        resp = unpack_response(self.resp_buf, self.spec.k, None)
        if record is not None:
            resp.earlier_rank, prespec = record
            resp.times = DraftTimes(0.0, 0.0, 0.0, *prespec)
        return resp

    # -- shutdown ----------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def close(self) -> None:
        """Stop the worker (exit, then terminate, then kill: 3 s at most), free the shared files, unpin."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.is_alive() and hasattr(self, "req_buf"):
                try:
                    self.box.post(
                        pack_command(self.req_buf, Cmd.EXIT), timeout_s=0.5, alive=proc.is_alive
                    )
                except LinkError:
                    pass
            proc.join(0.5)
            for stop in (proc.terminate, proc.kill):
                if proc.is_alive():
                    stop()
                    proc.join(1.0)
        for path in self._shm_paths:
            path.unlink(missing_ok=True)
        self._shm_paths = []
        if self._old_affinity is not None:
            os.sched_setaffinity(0, self._old_affinity)
            self._old_affinity = None


def _to_device(resp: SpecResponse, device: torch.device) -> SpecResponse:
    if device.type == "cpu":
        return resp
    resp.cache_hit, resp.tokens = resp.cache_hit.to(device), resp.tokens.to(device)
    resp.num_proposals, resp.prev_rank = resp.num_proposals.to(device), resp.prev_rank.to(device)
    resp.q = resp.q.to(device) if resp.q is not None else None
    return resp


def open_engine(
    target: Decoder,
    draft_dir: str | Path,
    policy,
    sampling,
    plan: DevicePlan,
    *,
    batch_size: int,
    timeout_s: float = 10.0,
    threads: int = 1,
    handshake_pings: int = 200,
) -> SSDEngine:
    """An SSD engine whose draft runs in a worker process; close it (or use ``with``) when done."""
    link = RemoteDraft(
        draft_dir,
        spec_config(policy, sampling),
        plan,
        max_batch=batch_size,
        vocab_size=target.config.vocab_size,
        dtype="bfloat16" if target.dtype == torch.bfloat16 else "float32",
        threads=threads,
        timeout_s=timeout_s,
        handshake_pings=handshake_pings,
    )
    return SSDEngine(target, link, policy, sampling)
