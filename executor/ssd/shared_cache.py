"""The speculation cache in shared memory: the target looks up its own key, no round trip on a hit.

With the draft on a CPU of the same host, the worker's ``SpecCache`` lives in files in /dev/shm
that both processes map, next to a small float64 header:

    [published, stop, valid, depth, prespec start, end, glue_s, tree_s, tree depth, ranks (B)]

After each pre-speculation the worker writes the cache (keys and tokens, q when the target
samples), then the header fields, then bumps ``published`` last (x86 keeps stores in order; the
mailbox already refuses other CPUs). Per step the target waits until ``published`` counts every
request it posted (normally already true: the tree finished during verification; if not, it
sets ``stop`` to ring the doorbell and the worker cuts its tree at the current depth), looks up
its key, copies the tokens (and q) out, and only then posts the request, so the worker cannot
overwrite what is being read. The request still goes to the worker: it runs the same lookup on
the same data to know what is being verified (the glue input), and answers only when it must
jit-decode missed rows. ``ranks`` are the bonus ranks of the step before the previous one (the
worker ranks a step's bonus when the next request brings it, before its next glue forward), so
they reach the trace one step later. Imports torch and executor.ssd only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from executor.ssd.spec_cache import SpecCache
from executor.ssd.transport import new_shared_path, shared_tensor

PUBLISHED, STOP, VALID, DEPTH = 0, 1, 2, 3
TIMES = slice(4, 9)  # the pre-speculation: start, end, glue_s, tree_s, tree depth
RANKS = 9


@dataclass(frozen=True)
class SharedCachePaths:
    """The files behind a shared cache (picklable: handed to the worker)."""

    header: str
    forks: str
    index: str
    seq: str
    tokens: str
    q: str | None


@dataclass
class Lookup:
    """What the target read for one step: per row hit, proposals (a copy), their count, q."""

    hit: torch.Tensor  # [B] bool
    tokens: torch.Tensor  # [B, k] long
    num: torch.Tensor  # [B] long
    q: torch.Tensor | None  # [B, k, V] or None
    ranks: list[int]  # bonus ranks of the step before the previous (0: unknown)
    prespec: tuple[
        float, ...
    ]  # the pre-speculation behind this cache (start, end, glue, tree, depth)


class SharedCache:
    """One side's mapping of the shared speculation cache for up to ``max_batch`` rows."""

    def __init__(
        self,
        paths: SharedCachePaths,
        *,
        max_batch: int,
        budget: int,
        k: int,
        vocab_size: int,
    ) -> None:
        self.paths, self.max_batch, self.budget, self.k = paths, max_batch, budget, k
        n = max_batch * budget
        self.header = shared_tensor(paths.header, (RANKS + max_batch,), torch.float64)
        self._h = self.header.numpy()
        self.forks = shared_tensor(paths.forks, (n,), torch.long)
        self.index = shared_tensor(paths.index, (n,), torch.long)
        self.seq = shared_tensor(paths.seq, (max_batch,), torch.long)
        self.tokens = shared_tensor(paths.tokens, (n, k), torch.long)
        self.q = shared_tensor(paths.q, (n, k, vocab_size)) if paths.q else None
        self._base = torch.arange(max_batch) * budget

    @classmethod
    def create(
        cls, *, max_batch: int, budget: int, k: int, vocab_size: int, with_q: bool
    ) -> SharedCache:
        """New files (the target's side); ``paths`` lists them for the worker and for removal."""
        names = [str(new_shared_path()) for _ in range(6 if with_q else 5)]
        paths = SharedCachePaths(*names[:5], q=names[5] if with_q else None)
        return cls(paths, max_batch=max_batch, budget=budget, k=k, vocab_size=vocab_size)

    def files(self) -> list[Path]:
        p = self.paths
        return [Path(x) for x in (p.header, p.forks, p.index, p.seq, p.tokens, p.q) if x]

    # -- worker side -------------------------------------------------------------------------
    def spec_cache(self, batch_size: int, vocab_size: int) -> SpecCache:
        """The worker's ``SpecCache`` for a batch of ``batch_size`` rows, on the shared memory."""
        if batch_size > self.max_batch:
            raise ValueError(f"shared cache: batch {batch_size} > max_batch {self.max_batch}")
        n = batch_size * self.budget
        return SpecCache.on(
            forks=self.forks[:n].view(batch_size, self.budget),
            index=self.index[:n].view(batch_size, self.budget),
            seq=self.seq[:batch_size],
            tokens=self.tokens[:n],
            q=self.q[:n] if self.q is not None else None,
        )

    def stop_requested(self, count: int) -> bool:
        """The target rang for the pre-speculation that will be published as ``count``."""
        return self._h[STOP] >= count

    def publish(
        self, count: int, cache: SpecCache, ranks: torch.Tensor, prespec: tuple[float, ...]
    ) -> None:
        """After the cache's tensors are written: header fields, then the counter."""
        h = self._h
        h[VALID] = 1.0 if cache.valid else 0.0
        h[DEPTH] = cache.depth
        h[TIMES] = prespec
        b = ranks.shape[0]
        h[RANKS : RANKS + b] = ranks.numpy()
        h[PUBLISHED] = count

    # -- target side -------------------------------------------------------------------------
    def published(self) -> int:
        return int(self._h[PUBLISHED])

    def ring(self, count: int) -> None:
        """Ask the worker to cut the pre-speculation that will be published as ``count``."""
        self._h[STOP] = count

    def lookup(
        self,
        seq: torch.Tensor,
        accepted_len: torch.Tensor,
        token: torch.Tensor,
    ) -> Lookup:
        """Copy out the branches matching each row's key (call after ``published`` is current)."""
        b, m, k = seq.shape[0], self.budget, self.k
        h = self._h
        n = b * m
        forks = self.forks[:n].view(b, m)
        index = self.index[:n].view(b, m)
        match = (index == accepted_len[:, None]) & (forks == token[:, None])
        hit = match.any(dim=1) & (self.seq[:b] == seq) & (accepted_len >= 0)
        if h[VALID] == 0:
            hit.zero_()
        flat = self._base[:b] + match.long().argmax(dim=1)
        tokens = self.tokens.index_select(0, flat)
        q = self.q.index_select(0, flat) if self.q is not None else None
        num = torch.where(hit, int(h[DEPTH]), k)
        return Lookup(hit, tokens, num, q, *self.record(b))

    def record(self, batch_size: int) -> tuple[list[int], tuple[float, ...]]:
        """The last publication's bonus ranks (of the step before the previous) and the
        pre-speculation window behind it, for ``batch_size`` rows."""
        h = self._h
        ranks = [int(r) for r in h[RANKS : RANKS + batch_size]]
        return ranks, tuple(float(x) for x in h[TIMES])
