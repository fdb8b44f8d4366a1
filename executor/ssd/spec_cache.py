"""The speculation cache: what the draft prepared during the last verification, keyed by outcome.

Row b holds M branches: branch m hangs off glue index ``index[b, m]`` (the accepted length it
assumes) with bonus-token guess ``forks[b, m]``, and carries the k tokens decoded after it
(``tokens[b*M + m]``) and, when the target samples, the draft distributions they were drawn from
(``q[b*M + m]``, [k, V]). A request's key (seq, accepted_len, token) hits branch m when the
three fields match; at most one branch matches (the candidates at one glue index are distinct).
Only the latest round is kept: the tree decode overwrites ``tokens``/``q`` in place, after the
lookup of the request that started it. ``depth``: how many of the k tokens the tree decoded
(1..k: fewer than k when the next request cut the tree short). Imports torch only.
"""

from __future__ import annotations

import torch


class SpecCache:
    """Keys and values of B*M pre-speculated branches (values written by the tree decode)."""

    def __init__(
        self, batch_size: int, budget: int, k: int, vocab_size: int, *, with_q: bool, device
    ) -> None:
        self.budget = budget
        self.forks = torch.full((batch_size, budget), -1, dtype=torch.long, device=device)
        self.index = torch.full((batch_size, budget), -2, dtype=torch.long, device=device)
        self.seq = torch.full((batch_size,), -1, dtype=torch.long, device=device)
        self.tokens = torch.zeros((batch_size * budget, k), dtype=torch.long, device=device)
        self.q = (
            torch.zeros((batch_size * budget, k, vocab_size), device=device) if with_q else None
        )
        self._row_base = torch.arange(batch_size, device=device) * budget
        self.valid = False
        self.depth = 0

    @classmethod
    def on(
        cls,
        *,
        forks: torch.Tensor,
        index: torch.Tensor,
        seq: torch.Tensor,
        tokens: torch.Tensor,
        q: torch.Tensor | None,
    ) -> SpecCache:
        """A cache over given tensors (shared memory: executor.ssd.shared_cache), reset to empty."""
        self = cls.__new__(cls)
        b, self.budget = forks.shape
        self.forks, self.index, self.seq = forks.fill_(-1), index.fill_(-2), seq.fill_(-1)
        self.tokens, self.q = tokens, q
        self._row_base = torch.arange(b, device=forks.device) * self.budget
        self.valid = False
        self.depth = 0
        return self

    def store(
        self, seq: torch.Tensor, forks: torch.Tensor, index: torch.Tensor, depth: int
    ) -> None:
        """Record the keys of the branches whose first ``depth`` tokens the tree just wrote."""
        self.seq.copy_(seq)
        self.forks.copy_(forks)
        self.index.copy_(index)
        self.depth = depth
        self.valid = depth > 0

    def lookup(
        self, seq: torch.Tensor, accepted_len: torch.Tensor, token: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(hit [B] bool, flat branch index [B] into tokens/q; meaningful where hit)."""
        if not self.valid:
            b = seq.shape[0]
            return (
                torch.zeros(b, dtype=torch.bool, device=seq.device),
                self._row_base.clone(),
            )
        match = (self.index == accepted_len[:, None]) & (self.forks == token[:, None])
        hit = match.any(dim=1) & (self.seq == seq)
        return hit, self._row_base + match.long().argmax(dim=1)

    def invalidate(self) -> None:
        self.valid = False
