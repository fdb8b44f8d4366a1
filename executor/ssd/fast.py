"""The fast speculator: prompt lookup (n-gram) proposals from a sequence's own tokens.

SSD's ``fast`` fallback serves a cache miss without the draft model: find the latest earlier
occurrence of the sequence's last n tokens (n = ``max_ngram`` down to 1) and propose the k
tokens that followed it. When the match is so recent that fewer than k tokens follow it, the
continuation runs on into the proposal itself (a repeating pattern keeps repeating). With no
match at all nothing is proposed (``num_proposals`` 0: verification then emits one token, as
AR does). Proposals are deterministic functions of the context, so verification is exact with a
one-hot q at each proposal (any temperature).

Cost: a dict per sequence maps each n-gram to the position after its latest occurrence, updated
as tokens are committed (a few microseconds per sequence and step). Runs in the target process
before each request, so that the draft learns the proposals it must glue without a round trip.
Imports torch only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class NgramSpeculator:
    """Per-sequence n-gram indexes of B sequences; ``propose`` gives up to k tokens per row."""

    def __init__(self, k: int, *, max_ngram: int = 3) -> None:
        if k < 1 or max_ngram < 1:
            raise ValueError(f"NgramSpeculator: k and max_ngram must be >= 1, got {k}, {max_ngram}")
        self.k = k
        self.max_ngram = max_ngram
        self._seqs: list[list[int]] = []
        self._index: list[dict[tuple[int, ...], int]] = []
        self._indexed: list[int] = []  # n-grams ending before this position are indexed

    def reset(self, sequences: Sequence[Sequence[int]]) -> None:
        """Start over with these token histories (prompt plus tokens so far), one per row."""
        self._seqs = [list(s) for s in sequences]
        self._index = [{} for _ in sequences]
        self._indexed = [0] * len(sequences)

    def extend(self, row: int, tokens: Sequence[int]) -> None:
        """Append committed tokens to a row's history."""
        self._seqs[row].extend(tokens)

    def _catch_up(self, row: int) -> None:
        """Index every n-gram that ends before the last token (the suffix itself is the query)."""
        seq, index = self._seqs[row], self._index[row]
        stop = len(seq) - 1  # n-grams ending at positions < stop; their next token exists
        for end in range(self._indexed[row], stop):
            for n in range(1, min(self.max_ngram, end + 1) + 1):
                index[tuple(seq[end - n + 1 : end + 1])] = end + 1
        self._indexed[row] = max(self._indexed[row], stop)

    def propose_row(self, row: int) -> list[int]:
        """Up to k proposals for one row (empty when no n-gram of the suffix occurred before)."""
        self._catch_up(row)
        seq, index = self._seqs[row], self._index[row]
        for n in range(min(self.max_ngram, len(seq)), 0, -1):
            nxt = index.get(tuple(seq[-n:]))
            if nxt is not None:
                period = len(seq) - nxt  # >= 1: the match ends before the suffix does
                tail = seq[nxt:]
                return [tail[i % period] for i in range(self.k)]
        return []

    def propose(
        self, rows: Sequence[int], batch_size: int, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Proposals [B, k] (unused slots 0) and their counts [B] for the given rows (others get 0)."""
        out = [[0] * self.k for _ in range(batch_size)]
        num = [0] * batch_size
        for r in rows:
            p = self.propose_row(r)
            out[r][: len(p)] = p
            num[r] = len(p)
        return (
            torch.tensor(out, dtype=torch.long, device=device),
            torch.tensor(num, dtype=torch.long, device=device),
        )
