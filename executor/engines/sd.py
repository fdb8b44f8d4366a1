"""SD engine: the draft proposes k tokens, the target verifies k+1 in one forward (one process).

Per step: (1) propose: the draft's first forward catches its cache up on the two tokens before
the next proposal (the last accepted token, or the previous pending token, and the pending
token; recomputing one known position keeps every row's input at two tokens), then k-1
single-token forwards; every proposal is sampled from ``draft_distribution`` (the same q goes
to the verifier). (2) verify: the target runs [pending, x_1..x_k] and ``verifier`` returns the
accepted length and the bonus token. (3) accept: both caches roll back by position bookkeeping
alone (``KVCache.lengths``); nothing is copied. Exactly lossless at any temperature (tests hold it to
transformers' greedy output and to the target's distribution).

Use through ``executor.engines.common.generate(SDEngine(target, draft, sampling, k), ...)``.
Imports torch, kernels, executor.model and the ssdsim trace contract only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from executor.engines.common import Batch, Sampling, prefill_logits
from executor.model.decoder import Decoder
from kernels.sampling import draft_distribution, sample
from kernels.verify import verify
from ssdsim.trace import SeqOutcome

Verifier = Callable[..., tuple[torch.Tensor, torch.Tensor]]


class SDEngine:
    """Speculative decoding with a draft model, draft and target in one process, sequential."""

    mode = "sd"

    def __init__(
        self,
        target: Decoder,
        draft: Decoder,
        sampling: Sampling,
        k: int,
        *,
        verifier: Verifier = verify,
    ) -> None:
        if k < 1:
            raise ValueError(f"SDEngine: k must be >= 1, got {k}")
        if draft.config.vocab_size != target.config.vocab_size:
            raise ValueError(
                f"SDEngine: draft vocab {draft.config.vocab_size} != target vocab {target.config.vocab_size}"
            )
        self.target, self.draft, self.sampling, self.k = target, draft, sampling, k
        self.verifier = verifier
        self.label = f"sd k={k}"

    def prefill(self, batch: Batch) -> torch.Tensor:
        b, k = batch.size, self.k
        capacity = batch.capacity_tokens + 2 * k + 2
        self.tcache = self.target.new_cache(b, capacity)
        self.dcache = self.draft.new_cache(b, capacity)
        dev = self.target.device
        self.proposals = torch.zeros((b, k), dtype=torch.long, device=dev)
        self.q = (
            None
            if self.sampling.greedy
            else torch.zeros((b, k, self.draft.config.vocab_size), device=dev)
        )
        self.prev = torch.tensor([p[-1] for p in batch.prompts], dtype=torch.long, device=dev)
        prefill_logits(self.draft, self.dcache, batch.prompts)
        self.dcache.lengths -= 1  # the draft's first forward re-reads the last prompt token
        return prefill_logits(self.target, self.tcache, batch.prompts)

    def propose(self, batch: Batch) -> None:
        """Fill ``self.proposals`` (and ``self.q`` when sampling) with k draft tokens per row."""
        s = self.sampling
        x = torch.stack((self.prev, batch.pending), dim=1)
        logits = self.draft.forward(x, self.dcache.lengths, self.dcache, logits_at=-1)
        for i in range(self.k):
            if self.q is None:
                tok = logits.argmax(dim=-1)
            else:
                q_i = draft_distribution(
                    logits, s.draft_t, rescale=s.rescale, top_n=s.rescale_top_n
                )
                tok = sample(q_i, batch.generator)
                self.q[:, i] = q_i
            self.proposals[:, i] = tok
            if i < self.k - 1:
                logits = self.draft.forward(
                    tok[:, None], self.dcache.lengths + 2 + i, self.dcache, logits_at=0
                )

    def step(self, batch: Batch) -> None:
        clock = batch.clock
        t_start = clock.now()
        rows = batch.live_rows()
        self.propose(batch)
        t_draft = clock.now()
        tokens = torch.cat((batch.pending[:, None], self.proposals), dim=1)
        logits = self.target.forward(tokens, self.tcache.lengths, self.tcache)
        accepted, bonus = self.verifier(
            self.proposals, logits, self.q, batch.temperature, generator=batch.generator
        )
        t_verify = clock.now()
        self.advance(batch, accepted, bonus)
        accepted_h, bonus_h, proposals_h = (
            accepted.tolist(),
            bonus.tolist(),
            self.proposals.tolist(),
        )
        outcomes = []
        for row in rows:
            a = accepted_h[row]
            kept = batch.commit(row, [*proposals_h[row][:a], bonus_h[row]])
            outcomes.append(
                SeqOutcome(
                    seq=batch.seq_ids[row],
                    proposed=self.k,
                    accepted_len=a,
                    emitted_tokens=len(kept),
                    token_ids=tuple(kept),
                )
            )
        batch.record(t_start, outcomes, verify_s=t_verify - t_draft, draft_s=t_draft - t_start)

    def advance(self, batch: Batch, accepted: torch.Tensor, bonus: torch.Tensor) -> None:
        """Move live rows past the accepted tokens and the bonus: rollback is setting lengths, no copy.

        Target cache: every token but the pending one (seq_len - 1). Draft cache: every token but
        the last two (seq_len - 2), which its next first forward reads again.
        """
        last_accepted = self.proposals.gather(1, (accepted - 1).clamp(min=0)[:, None])[:, 0]
        self.prev.copy_(torch.where(accepted > 0, last_accepted, batch.pending))
        step = (accepted + 1) * batch.live
        batch.seq_len += step
        self.tcache.lengths += step
        self.dcache.lengths += step
        batch.pending.copy_(bonus)
