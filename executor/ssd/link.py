"""How the target engine reaches the draft: the ``DraftLink`` interface and its in-process form.

``RemoteDraft`` (executor.ssd.remote) runs the draft in its own process on its own device; it is
what SSD is for. ``LocalDraft`` runs the very same ``DraftSpeculator`` calls in the target's
process, one after the other (serve, then pre-speculate, no overlap): the statistical tests use
it to draw 20,000 samples quickly, and it isolates the algorithm from the transport when
debugging; its optional ``stop`` stands in for the worker's doorbell (``stop()`` true: the next
request is waiting, cut the tree short), so tests can force shallow trees. A link raises
``DraftFailure`` when the draft is gone or too slow; the engine then finishes the run without it.
Imports torch and executor only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import torch

from executor.ssd.protocol import DraftTimes, SpecRequest, SpecResponse
from executor.ssd.speculator import DraftSpeculator


class DraftFailure(RuntimeError):
    """The draft worker died, stalled past the timeout, or answered nonsense."""


class DraftLink(Protocol):
    handshake_s: list[float]
    description: str

    def start_batch(
        self, prompts: list[list[int]], seq_ids: list[int], capacity: int, *, jit: bool
    ) -> None:
        """Send a new batch's prompts (the draft prefills while the target does)."""

    def request(self, req: SpecRequest, step: int) -> SpecResponse:
        """One step's speculation; q in the response when the target samples."""

    def finish(self, req: SpecRequest) -> SpecResponse:
        """End of a batch: the last step's bonus ranks and pre-speculation times."""

    def close(self) -> None: ...


class LocalDraft:
    """The draft speculator called in-process: serve then pre-speculate, sequentially."""

    description = "in-process (sequential)"

    def __init__(
        self,
        speculator: DraftSpeculator,
        max_batch: int,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.spec, self.stop = speculator, stop
        self.handshake_s: list[float] = []
        cfg = speculator.cfg
        self.q = (
            torch.zeros((max_batch, cfg.k, speculator.vocab_size), device=speculator.device)
            if cfg.ship_q
            else None
        )
        self._prev = (0.0, 0.0, 0.0, 0.0, 0.0)

    def start_batch(
        self, prompts: list[list[int]], seq_ids: list[int], capacity: int, *, jit: bool
    ) -> None:
        self.spec.start_batch(prompts, seq_ids, capacity, jit=jit)
        self._prev = (0.0, 0.0, 0.0, 0.0, 0.0)

    def request(self, req: SpecRequest, step: int) -> SpecResponse:
        got = time.perf_counter()
        resp, jit_s = self.spec.serve(req, self.q)
        respond = time.perf_counter()
        resp.times = DraftTimes(got, respond, jit_s, *self._prev)
        glue_s, tree_s, depth = self.spec.prespeculate(self.stop)
        self._prev = (respond, time.perf_counter(), glue_s, tree_s, depth)
        if resp.q is not None:
            resp.q = resp.q[: req.batch_size]
        return resp

    def finish(self, req: SpecRequest) -> SpecResponse:
        resp = self.spec.finish(req)
        resp.times = DraftTimes(0.0, 0.0, 0.0, *self._prev)
        return resp

    def close(self) -> None:
        pass
