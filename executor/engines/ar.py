"""AR engine: one target forward per emitted token (the baseline every other mode must match).

Use through ``executor.engines.common.generate(AREngine(target, sampling), prompts, ...)``.
Imports torch, kernels, executor.model and the ssdsim trace contract only.
"""

from __future__ import annotations

import torch

from executor.engines.common import Batch, Sampling, prefill_logits
from executor.model.decoder import Decoder
from kernels.sampling import probs_from_logits, sample
from ssdsim.trace import SeqOutcome


class AREngine:
    """Autoregressive decoding of a batch with the target alone."""

    mode = "ar"
    label = "ar"

    def __init__(self, target: Decoder, sampling: Sampling) -> None:
        self.target = target
        self.sampling = sampling
        self.cache = None

    def prefill(self, batch: Batch) -> torch.Tensor:
        self.cache = self.target.new_cache(batch.size, batch.capacity_tokens + 1)
        return prefill_logits(self.target, self.cache, batch.prompts)

    def next_tokens(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The target's token at every row: argmax when greedy, else a sample at its temperature."""
        if self.sampling.temperature == 0:
            return logits.argmax(dim=-1)
        return sample(probs_from_logits(logits, batch.temperature), batch.generator)

    def step(self, batch: Batch) -> None:
        t_start = batch.clock.now()
        rows = batch.live_rows()
        logits = self.target.forward(
            batch.pending[:, None], self.cache.lengths, self.cache, logits_at=0
        )
        tokens = self.next_tokens(logits, batch)
        batch.seq_len += batch.live
        self.cache.lengths += batch.live  # every token but the pending one is in the cache
        batch.pending.copy_(tokens)
        host = tokens.tolist()
        verify_s = batch.clock.now() - t_start
        outcomes = []
        for row in rows:
            kept = batch.commit(row, host[row : row + 1])
            outcomes.append(
                SeqOutcome(
                    seq=batch.seq_ids[row],
                    accepted_len=0,
                    emitted_tokens=len(kept),
                    proposer="none",
                    token_ids=tuple(kept),
                )
            )
        batch.record(t_start, outcomes, verify_s=verify_s)
