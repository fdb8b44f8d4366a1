"""The control channel between the target and a draft worker on one host: a shared-memory mailbox.

gloo over loopback costs two socket hops and four thread wake-ups per round trip: on the 2-core
dev machine its p50 was ~0.2 ms and its p99 ~8 ms (1,000 pings between two pinned processes),
while a shared-memory counter polled by the waiting side answered in ~1 us (p99 ~2 us): with a
verification of ~10 ms, the p99 alone would cost SSD most of its margin. So on CPU the fixed-size
request and response messages live in one file in /dev/shm mapped by both processes:

    [posted, taken, answered, request (request_numel), response (response_numel)]  (float64)

``post`` (target): wait until the worker took the previous request, write the request, then
bump ``posted``. ``take`` (worker): wait until ``posted`` > ``taken``, copy the request out, bump
``taken``. ``answer`` (worker): write the response, bump ``answered``; ``wait_answer`` (target):
wait for it and copy it out. A counter is written after its payload; x86 keeps stores in order
(other CPUs would need a fence here). ``pending()`` (posted > taken) is the doorbell: a request
is waiting, so the draft cuts its pre-speculation tree short.

Waiting spins for ``spin_s`` (the answer usually comes within microseconds to a tree step),
yielding the core at each look (``os.sched_yield``: free on an idle core, and another process
queued on it runs), then naps between looks so that an idle worker does not hold its core:
``nap_s`` at first, doubling up to ``max_nap_s`` the longer the wait (a worker whose engine is
idle while another runs, as in a benchmark that interleaves engines, would otherwise wake
thousands of times a second on the core the running draft needs). Spinning suits a quiet
machine with a core per process (the benchmark's setting); under contention a blocking receive
is woken sooner than a spinner gets its turn back. Every
``check_s`` it asks ``alive()`` and raises ``LinkError`` (from transport) when the peer is gone
or ``timeout_s`` has passed. Variable-size payloads (PREFILL's prompts) and, between two GPUs,
the draft distributions still travel through the process group (``Pipe``). Imports torch and
executor.ssd.transport only.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from executor.ssd.transport import LinkError, shared_tensor

POSTED, TAKEN, ANSWERED = 0, 1, 2
COUNTERS = 3
# CPUs that keep stores in program order (total store order): the mailbox needs no fence there.
ORDERED_STORE_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686"})


def check_machine(machine: str | None = None) -> None:
    """Raise ``LinkError`` on a CPU whose store ordering the mailbox does not handle (e.g. arm64)."""
    machine = (machine or platform.machine()).lower()
    if machine not in ORDERED_STORE_MACHINES:
        raise LinkError(
            f"the SSD shared-memory mailbox needs an x86 CPU (stores seen in order); this "
            f"machine is {machine!r}: expected one of {sorted(ORDERED_STORE_MACHINES)}"
        )


class Mailbox:
    """One side's view of the shared request/response slots (the same file on both sides)."""

    def __init__(
        self,
        path: str | Path,
        request_numel: int,
        response_numel: int,
        *,
        spin_s: float = 0.1,
        nap_s: float = 2e-4,
        max_nap_s: float = 0.01,
        check_s: float = 0.05,
    ) -> None:
        check_machine()
        total = COUNTERS + request_numel + response_numel
        self._mem = shared_tensor(path, (total,), torch.float64)
        self._n = self._mem.numpy()  # counters read through numpy: ~0.1 us a look
        self.request = self._mem[COUNTERS : COUNTERS + request_numel]
        self.response = self._mem[COUNTERS + request_numel :]
        self.spin_s, self.nap_s, self.max_nap_s, self.check_s = spin_s, nap_s, max_nap_s, check_s
        self._posted = int(self._n[POSTED])
        self._answered = int(self._n[ANSWERED])
        self._taken = int(self._n[TAKEN])

    # -- target side -------------------------------------------------------------------------
    def post(self, buf: torch.Tensor, *, timeout_s: float, alive: Callable[[], bool]) -> None:
        """Write a request (the worker took the previous one first) and signal it."""
        self._wait(lambda: self._n[TAKEN] >= self._posted, timeout_s, alive, "take a request")
        self.request[: buf.numel()].copy_(buf)
        self._posted += 1
        self._n[POSTED] = self._posted

    def wait_answer(
        self, out: torch.Tensor, *, timeout_s: float, alive: Callable[[], bool]
    ) -> torch.Tensor:
        """Wait for the next response and copy it into ``out``."""
        want = self._answered + 1
        self._wait(lambda: self._n[ANSWERED] >= want, timeout_s, alive, "answer")
        self._answered = want
        return out.copy_(self.response[: out.numel()])

    # -- worker side -------------------------------------------------------------------------
    def pending(self) -> bool:
        """A request is posted and not yet taken (the doorbell)."""
        return self._n[POSTED] > self._taken

    def take(
        self, out: torch.Tensor, *, alive: Callable[[], bool], spin: bool = True
    ) -> torch.Tensor:
        """Wait (without a deadline) for the next request and copy it into ``out``.

        spin=False naps from the start: between batches, when no request is due soon.
        """
        self._wait(self.pending, float("inf"), alive, "post a request", spin=spin)
        out.copy_(self.request[: out.numel()])
        self._taken += 1
        self._n[TAKEN] = self._taken
        return out

    def answer(self, buf: torch.Tensor) -> None:
        self.response[: buf.numel()].copy_(buf)
        self._n[ANSWERED] = self._n[ANSWERED] + 1

    # -- waiting -----------------------------------------------------------------------------
    def wait_for(
        self, ready: Callable[[], bool], *, timeout_s: float, alive: Callable[[], bool], what: str
    ) -> None:
        """Wait as for a message until ``ready()`` (e.g. the shared cache's publication)."""
        self._wait(ready, timeout_s, alive, what)

    def _wait(
        self,
        ready: Callable[[], bool],
        timeout_s: float,
        alive: Callable[[], bool],
        what: str,
        *,
        spin: bool = True,
    ) -> None:
        if ready():
            return
        start = time.perf_counter()
        spin_until, next_check = start + (self.spin_s if spin else 0.0), start + self.check_s
        nap = self.nap_s
        while not ready():
            now = time.perf_counter()
            if now >= next_check:
                if not alive():
                    raise LinkError(f"the peer is gone (waiting for it to {what})")
                if now - start > timeout_s:
                    raise LinkError(f"the peer did not {what} within {timeout_s:g} s")
                next_check = now + self.check_s
            if now >= spin_until:
                time.sleep(nap)
                nap = min(2 * nap, self.max_nap_s)
            else:
                os.sched_yield()
