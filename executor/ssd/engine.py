"""SSD engine, target side: request the speculation, verify it, advance; the draft works meanwhile.

Per step: (1) with the ``fast`` fallback, compute the n-gram proposals of every live row first
(the draft needs them to glue a missed row, and they cost microseconds); (2) send the request
(per row the cache key (seq, accepted_len, pending token), N, and those proposals) and wait for
the response: cached tokens on a hit, jit-decoded tokens for missed rows (``jit``) or the fast
proposals (``fast``); (3) verify [pending, x_1..x_k] in one target forward with
``kernels.verify.verify`` (q from the draft at T > 0, one-hot for fast proposals; fewer
proposals per row allowed); (4) advance (KV rollback is bookkeeping) and commit. The draft's
pre-speculation for step t+1 runs during (3).

If the draft fails (dies, stalls past the link's timeout), the engine logs a warning and
finishes the run alone: the fast speculator when the fallback is ``fast``, AR otherwise; the
output stays exactly the target's. Use through ``executor.engines.common.generate`` with an
engine from ``executor.ssd.open_engine`` (two processes) or ``SSDEngine(target, LocalDraft(...))``.
Imports torch, kernels, executor and the ssdsim contracts only.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from executor.engines.common import Batch, Sampling, prefill_logits
from executor.model.decoder import Decoder
from executor.ssd.fast import NgramSpeculator
from executor.ssd.link import DraftFailure, DraftLink
from executor.ssd.protocol import SpecRequest
from executor.ssd.records import DraftStats, RawSeq, RawStep, StepLog, percentile
from kernels.sampling import one_hot, probs_from_logits, sample
from kernels.verify import verify
from ssdsim.policy import Policy

log = logging.getLogger(__name__)


class SSDEngine:
    """Speculative speculative decoding: this process verifies, the link's draft speculates."""

    mode = "ssd"

    def __init__(
        self, target: Decoder, link: DraftLink, policy: Policy, sampling: Sampling
    ) -> None:
        if policy.mode != "ssd":
            raise ValueError(f"SSDEngine: policy mode must be 'ssd', got {policy.mode!r}")
        self.target, self.link, self.policy, self.sampling = target, link, policy, sampling
        self.k = policy.k
        self.label = policy.label()
        self.fast = NgramSpeculator(policy.k)
        self.stats = DraftStats()
        self.failure: str | None = None
        self.failed_at_step: int | None = None
        self._steps_done = 0

    # -- batch lifecycle ---------------------------------------------------------------------
    def prefill(self, batch: Batch) -> torch.Tensor:
        b, k, dev = batch.size, self.k, self.target.device
        self.fallback = self.policy.fallback_for(b)
        capacity = batch.capacity_tokens + 2 * k + 2
        self.tcache = self.target.new_cache(b, capacity)
        self.seq = torch.tensor(batch.seq_ids, dtype=torch.long, device=dev)
        self.accepted = torch.full((b,), -1, dtype=torch.long, device=dev)  # forced miss
        self.no_fast = (
            torch.zeros((b, k), dtype=torch.long, device=dev),
            torch.zeros(b, dtype=torch.long, device=dev),
        )
        self.fast.reset(batch.prompts)
        self._synced = [0] * b
        self.log = StepLog()
        if self.failure is None:
            try:
                self.link.start_batch(
                    batch.prompts, batch.seq_ids, capacity, jit=self.fallback == "jit"
                )
            except DraftFailure as exc:
                self._fail(exc)
        return prefill_logits(self.target, self.tcache, batch.prompts)

    def finish_batch(self, batch: Batch) -> None:
        """After the last step: the last bonus ranks, then the batch's trace records."""
        if self.failure is None and len(self.log):
            try:
                resp = self.link.finish(self._request(batch, *self.no_fast))
                self._attach(resp)
            except DraftFailure as exc:
                self._fail(exc)
        self.stats.add_batch(self.log)
        batch.steps.extend(self.log.records(len(batch.steps)))

    def summary_fields(self) -> dict[str, Any]:
        """RunSummary extras: draft busy time, handshake latencies, the draft's time split."""
        hs = self.link.handshake_s
        extra: dict[str, Any] = {
            "handshake_p50_s": percentile(hs, 50),
            "handshake_p99_s": percentile(hs, 99),
            "handshake_samples": len(hs),
            "draft_link": self.link.description,
            "fan_out": list(self.policy.fan_out),
            "fan_out_miss": list(self.policy.fan_out_miss),
            "draft_failure": self.failure,
            "draft_failed_at_step": self.failed_at_step,
            **self.stats.extra(),
        }
        return {"draft_busy_s": self.stats.busy_s, "extra": extra}

    def probe_draft(self, forwards: int = 96, warmup: int = 12) -> tuple[float, float] | None:
        """The draft's (wall, CPU) seconds per forward on its own core (``executor.probe``),
        between batches; None when the link cannot probe (in-process) or the draft is lost."""
        probe = getattr(self.link, "probe", None)
        if probe is None or self.failure is not None:
            return None
        try:
            return probe(forwards, warmup)
        except DraftFailure as exc:
            self._fail(exc)
            return None

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> SSDEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one step ----------------------------------------------------------------------------
    def _request(self, batch: Batch, fast_tokens, num_fast) -> SpecRequest:
        return SpecRequest(
            self.seq,
            self.accepted,
            batch.pending,
            batch.seq_len,
            batch.live.bool(),
            fast_tokens,
            num_fast,
        )

    def _fast_proposals(self, batch: Batch, rows: list[int]):
        for r in rows:
            out = batch.outputs[r]
            if len(out) > self._synced[r]:
                self.fast.extend(r, out[self._synced[r] :])
                self._synced[r] = len(out)
        return self.fast.propose(rows, batch.size, self.target.device)

    def step(self, batch: Batch) -> None:
        if self.failure is not None:
            return self._step_alone(batch)
        clock = batch.clock
        t_start = clock.now()
        self.log.offset_s = clock.origin_s
        rows = batch.live_rows()
        fast = self._fast_proposals(batch, rows) if self.fallback == "fast" else self.no_fast
        t_request = clock.now()
        try:
            resp = self.link.request(self._request(batch, *fast), len(self.log))
        except DraftFailure as exc:
            self._fail(exc)
            return self._step_alone(batch)
        t_response = clock.now()
        accepted, bonus = self._verify(batch, resp.tokens, resp.q, resp.num_proposals)
        t_verified = clock.now()
        self._attach(resp)
        hits = resp.cache_hit.tolist()
        nums = resp.num_proposals.tolist()
        miss_by = "draft" if self.fallback == "jit" else "fast"
        proposers = [
            "draft" if h else (miss_by if n else "none") for h, n in zip(hits, nums, strict=True)
        ]
        seqs = self._advance(batch, rows, resp.tokens, accepted, bonus, nums, hits, proposers)
        any_miss = any(not hits[r] for r in rows)
        self.log.add(
            RawStep(
                t_start,
                t_request,
                t_response,
                t_response,
                t_verified,
                clock.now(),
                seqs,
                fast_s=t_request - t_start,
                fallback=self.fallback if any_miss else None,
                draft=resp.times,
            )
        )

    def _attach(self, resp) -> None:
        ranks = resp.prev_rank.tolist() if resp.prev_rank is not None else None
        self.log.attach_previous(resp.times, ranks, resp.earlier_rank)

    def _verify(self, batch: Batch, proposals, q, num):
        tokens = torch.cat((batch.pending[:, None], proposals), dim=1)
        logits = self.target.forward(tokens, self.tcache.lengths, self.tcache)
        return verify(
            proposals,
            logits,
            q if self.sampling.temperature > 0 else None,
            batch.temperature,
            generator=batch.generator,
            num_proposals=num,
        )

    def _advance(self, batch, rows, proposals, accepted, bonus, nums, hits, proposers):
        """Move every live row past its accepted tokens and bonus; commit; the raw outcomes."""
        step = (accepted + 1) * batch.live
        batch.seq_len += step
        self.tcache.lengths += step
        batch.pending.copy_(bonus)
        self.accepted.copy_(accepted)
        acc_h, bonus_h, prop_h = accepted.tolist(), bonus.tolist(), proposals.tolist()
        seqs = []
        for r in rows:
            a = acc_h[r]
            kept = batch.commit(r, [*prop_h[r][:a], bonus_h[r]])
            seqs.append(RawSeq(r, batch.seq_ids[r], nums[r], a, tuple(kept), hits[r], proposers[r]))
        return seqs

    # -- without the draft -------------------------------------------------------------------
    def _fail(self, exc: Exception) -> None:
        self.failure = f"{type(exc).__name__}: {exc}"
        self.failed_at_step = self._steps_total()
        alone = "the fast speculator" if self.policy.fallback != "jit" else "AR"
        log.warning(
            "SSD draft failed (%s); finishing the run with %s on the target alone",
            self.failure,
            alone,
        )
        self.link.close()

    def _steps_total(self) -> int:
        return len(self.log) if hasattr(self, "log") else 0

    def _step_alone(self, batch: Batch) -> None:
        """A step without the draft: fast proposals verified exactly, or one AR token."""
        clock = batch.clock
        t_start = clock.now()
        rows = batch.live_rows()
        b = batch.size
        if self.policy.fallback != "jit":
            props, num = self._fast_proposals(batch, rows)
            vocab = self.target.config.vocab_size
            q = one_hot(props, vocab) if self.sampling.temperature > 0 else None
            t0 = clock.now()
            accepted, bonus = self._verify(batch, props, q, num)
            nums, proposer = num.tolist(), "fast"
        else:
            props, num = self.no_fast
            t0 = clock.now()
            logits = self.target.forward(
                batch.pending[:, None], self.tcache.lengths, self.tcache, logits_at=0
            )
            if self.sampling.temperature == 0:
                bonus = logits.argmax(dim=-1)
            else:
                bonus = sample(probs_from_logits(logits, batch.temperature), batch.generator)
            accepted, nums, proposer = torch.zeros_like(bonus), [0] * b, "none"
        t1 = clock.now()
        proposers = [proposer if n else "none" for n in nums]
        seqs = self._advance(batch, rows, props, accepted, bonus, nums, [False] * b, proposers)
        self.log.add(RawStep(t_start, t0, t0, t0, t1, clock.now(), seqs, fast_s=t0 - t_start))
