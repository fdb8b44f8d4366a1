"""The draft side of SSD: serve a speculation request, then pre-speculate for the next one.

``DraftSpeculator`` is the draft worker's whole logic, free of any transport: the worker process
calls it between receiving and sending messages, and ``LocalDraft`` calls it in-process (tests).

``serve(request)``: rank the previous step's bonus token among the draft's candidates (from the
last glue logits, the speculated token excluded: ``kernels.fork.candidate_rank``); look up the
key of every sequence; a hit returns the cached k tokens (and their q); a miss of a live row is
served by the fallback: ``jit`` decodes k tokens for the missed rows only (``rows=`` forwards),
``fast`` passes on the target's n-gram proposals from the request (q one-hot).

``prespeculate(stop)``, run while the target verifies: (1) glue forward of the k+1 tokens being
verified [token, x_1..x_k] (their KV enters the trunk, so any accepted prefix already has draft
KV); (2) fork the top F_j candidates at each glue index j, the speculated token excluded, with
the after-hit or after-miss fan-out list of each row; (3) k tree steps over the B*M branches
with ``forward_branches`` (branch (j, c) reads the trunk up to glue index j in place); the
results fill the cache under (seq, j, c). ``stop()`` is asked before every tree step after the
first: when the next request is already waiting, the tree stops at its current depth d >= 1 and
hits return d tokens (verification takes fewer proposals, exactly) instead of the target waiting
for the rest. At least one step always runs, so a hit means exactly "the key matched" (what
the bonus ranks in a trace predict) and carries at least one proposal.

Saguaro sampling: tree and jit tokens are sampled from q' = ``draft_distribution(logits, T_d,
rescale=C, top_n=F_j + 1)``, where j is the token's position in the chain (its glue index when
it is verified) and F_j the fan-out the fork at that index will use: the after-hit list for
tree tokens (they are only served on a hit), the after-miss list for jit tokens. F_j + 1 is the
candidate set plus the speculated token itself (REFERENCE.md section 6); F_j = 0 means no hit is
possible there, so no rescale (C = 1) at that position. The q' a token was sampled from is
exactly what is shipped to verification. Imports torch, kernels and executor only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from executor.engines.common import Sampling, prefill_logits
from executor.model.decoder import Decoder
from executor.ssd.protocol import SpecRequest, SpecResponse
from executor.ssd.spec_cache import SpecCache
from kernels.fork import candidate_rank, fork
from kernels.sampling import draft_distribution, one_hot, sample
from ssdsim.policy import Policy


@dataclass(frozen=True)
class SpecConfig:
    """What the draft needs to know of the policy and sampling (picklable for the worker).

    ship_q: the target samples (T > 0), so verification needs the draft distributions.
    """

    k: int
    fan_out: tuple[int, ...]
    fan_out_miss: tuple[int, ...]
    draft_temperature: float = 0.0
    rescale: float = 1.0
    ship_q: bool = False
    seed: int = 0

    @property
    def budget(self) -> int:
        return sum(self.fan_out)


def spec_config(policy: Policy, sampling: Sampling) -> SpecConfig:
    """The draft's view of a run: the policy's k, fan-outs and rescale; the draft temperature."""
    return SpecConfig(
        k=policy.k,
        fan_out=policy.fan_out,
        fan_out_miss=policy.fan_out_miss,
        draft_temperature=sampling.draft_t,
        rescale=policy.rescale,
        ship_q=sampling.temperature > 0,
        seed=sampling.seed + 1,
    )


def _top_n(fan: tuple[int, ...], k: int) -> list[int]:
    """Saguaro's rescaled set size per chain position: F_j + 1, or 0 (no rescale) where F_j = 0."""
    return [f + 1 if f > 0 else 0 for f in fan[:k]]


class DraftSpeculator:
    """The draft model, its trunk cache, branch scratch and speculation cache for one batch."""

    def __init__(
        self,
        draft: Decoder,
        config: SpecConfig,
        cache_factory: Callable[[int], SpecCache] | None = None,
    ) -> None:
        """cache_factory(B): the speculation cache of a batch (default: private tensors)."""
        self.draft, self.cfg = draft, config
        self.cache_factory = cache_factory
        self.device = draft.device
        self.vocab_size = draft.config.vocab_size
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        self._hit_fan = torch.tensor(config.fan_out, dtype=torch.long, device=self.device)
        self._miss_fan = torch.tensor(config.fan_out_miss, dtype=torch.long, device=self.device)
        self._hit_top_n = _top_n(config.fan_out, config.k)
        self._miss_top_n = _top_n(config.fan_out_miss, config.k)
        self.jit = True
        self.trunk = None
        self._next = None  # what the last serve handed to verification (for prespeculate)

    # -- batches -----------------------------------------------------------------------------
    def start_batch(
        self, prompts: list[list[int]], seq_ids: list[int], capacity: int, *, jit: bool
    ) -> None:
        """New batch: allocate, prefill the trunk with the prompts; misses use jit or fast."""
        b, k, m = len(prompts), self.cfg.k, self.cfg.budget
        self.jit = jit
        self.trunk = self.draft.new_cache(b, capacity)
        self.scratch = self.draft.new_scratch(b * m, k)
        if self.cache_factory is not None:
            self.cache = self.cache_factory(b)
        else:
            self.cache = SpecCache(
                b, m, k, self.vocab_size, with_q=self.cfg.ship_q, device=self.device
            )
        self.seq_ids = torch.tensor(seq_ids, dtype=torch.long, device=self.device)
        self.glue_logits = self.glue_tokens = self.glue_num = None
        self._next = None
        self._positions = torch.arange(k, device=self.device)[None, :]
        prefill_logits(self.draft, self.trunk, prompts)

    # -- sampling ----------------------------------------------------------------------------
    def _draw(
        self, logits: torch.Tensor, depth: int, top_n: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tokens [R] at chain position ``depth`` and the q' [R, V] they came from (None if unused)."""
        t = self.cfg.draft_temperature
        if t == 0 and not self.cfg.ship_q:
            return logits.argmax(dim=-1), None
        n = top_n[depth]
        q = draft_distribution(logits, t, rescale=self.cfg.rescale if n else 1.0, top_n=max(n, 1))
        tokens = logits.argmax(dim=-1) if t == 0 else sample(q, self.generator)
        return tokens, (q if self.cfg.ship_q else None)

    # -- serving -----------------------------------------------------------------------------
    def prev_ranks(self, req: SpecRequest) -> torch.Tensor:
        """Rank [B] of each row's bonus token among the last glue's candidates (0: unknown)."""
        if self.glue_logits is None:
            return torch.zeros_like(req.accepted_len)
        a = req.accepted_len
        # a slot past a row's proposals (fast: fewer than k) excluded nothing: put the token there
        proposed = torch.where(
            self._positions < self.glue_num[:, None], self.glue_tokens, req.token[:, None]
        )
        rank = candidate_rank(self.glue_logits, proposed, a.clamp(min=0, max=self.cfg.k), req.token)
        return torch.where(a >= 0, rank, 0)

    def finish(self, req: SpecRequest) -> SpecResponse:
        """End of a batch: the last step's bonus ranks only (no lookup, no pre-speculation)."""
        none = torch.zeros_like(req.num_fast)
        return SpecResponse(none.bool(), req.fast_tokens, none, self.prev_ranks(req))

    def serve(
        self, req: SpecRequest, q_out: torch.Tensor | None, *, rank: bool = True
    ) -> tuple[SpecResponse, float]:
        """Answer a request (q into q_out[:B] when shipping q); returns (response, jit seconds).

        rank=False leaves the previous step's bonus ranks out (prev_rank None): a caller that
        answers first computes them with ``prev_ranks`` after answering, before ``prespeculate``.
        """
        k = self.cfg.k
        ranks = self.prev_ranks(req) if rank else None
        hit, flat = self.cache.lookup(req.seq, req.accepted_len, req.token)
        self.cache.invalidate()
        tokens = self.cache.tokens.index_select(0, flat)
        if q_out is not None:
            torch.index_select(self.cache.q, 0, flat, out=q_out[: req.batch_size])
        miss = ~hit & req.live
        num = torch.where(hit, self.cache.depth, k)
        jit_s = 0.0
        if bool(miss.any()):
            rows = miss.nonzero()[:, 0]
            if self.jit:
                t0 = time.perf_counter()
                tokens.index_copy_(0, rows, self._jit(req, rows, q_out))
                jit_s = time.perf_counter() - t0
            else:
                fast = req.fast_tokens.index_select(0, rows)
                tokens.index_copy_(0, rows, fast)
                num.index_copy_(0, rows, req.num_fast.index_select(0, rows))
                if q_out is not None:
                    q_out.index_copy_(0, rows, one_hot(fast, self.vocab_size))
        self._next = (req, tokens, num, hit)
        return SpecResponse(hit, tokens, num, ranks, q_out), jit_s

    def _jit(
        self, req: SpecRequest, rows: torch.Tensor, q_out: torch.Tensor | None
    ) -> torch.Tensor:
        """Decode k tokens for the missed rows only, from their pending token; tokens [n, k]."""
        k = self.cfg.k
        x = req.token.index_select(0, rows)
        start = req.seq_len.index_select(0, rows) - 1
        top = int(start.max())
        out = torch.empty((rows.shape[0], k), dtype=torch.long, device=self.device)
        for d in range(k):
            logits = self.draft.forward(
                x[:, None], start + d, self.trunk, rows=rows, kv_len=top + d + 1, logits_at=0
            )
            x, q = self._draw(logits, d, self._miss_top_n)
            out[:, d] = x
            if q is not None:
                q_out[rows, d] = q
        return out

    # -- pre-speculation ---------------------------------------------------------------------
    def prespeculate(self, stop: Callable[[], bool] | None = None) -> tuple[float, float, int]:
        """Glue, fork and tree-decode for the request just served; (glue_s, tree_s, depth)."""
        req, sent, num, hit = self._next
        k = self.cfg.k
        t0 = time.perf_counter()
        start = req.seq_len - 1
        kv_len = int(req.seq_len.max()) + k
        glue = torch.cat((req.token[:, None], sent), dim=1)
        logits = self.draft.forward(glue, start, self.trunk, kv_len=kv_len)
        t1 = time.perf_counter()
        fan = torch.where(hit[:, None], self._hit_fan[None, :], self._miss_fan[None, :])
        # exclude only tokens actually proposed (-1 past a row's proposals matches nothing)
        excluded = torch.where(self._positions < num[:, None], sent, -1)
        forks, index = fork(logits, excluded, fan)
        trunk_len = (start[:, None] + index + 1).reshape(-1)
        x = forks.reshape(-1)
        depth = 0
        for d in range(k):
            if d and stop is not None and stop():
                break
            lg = self.draft.forward_branches(
                x, self.trunk, trunk_len, self.scratch, d, kv_len=kv_len
            )
            x, q = self._draw(lg, d, self._hit_top_n)
            self.cache.tokens[:, d] = x
            if q is not None:
                self.cache.q[:, d] = q
            depth = d + 1
        self.cache.store(req.seq, forks, index, depth)
        self.glue_logits, self.glue_tokens, self.glue_num = logits, sent, num
        self._next = None
        return t1 - t0, time.perf_counter() - t1, depth
