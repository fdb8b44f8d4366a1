"""The SSD messages between the target and the draft, and their fixed-size wire layout.

Per step the target sends one ``SpecRequest`` and gets one ``SpecResponse``. Per sequence the
request carries the speculation-cache key (seq, accepted_len, token): how many proposals the
last verification accepted (-1 after prefill: a forced miss) and the token that followed them
(the pending token, the next verification's first input); the sequence length N (tokens so far,
the pending one included), whether the row still decodes, and the fast speculator's proposals
(used by the ``fast`` fallback on a miss). The response carries per sequence the cache hit, the
proposals to verify (cached, jit-decoded or the fast ones) and how many there are, and the rank
of the previous step's bonus token among the draft's candidates (0: unknown); plus the draft's
timestamps (``DraftTimes``). At T > 0 the draft distributions q of the proposals travel apart
(shared memory on CPU), never the logits; at T = 0 nothing but token ids.

Wire layout: one float64 tensor per message, the same size every step (``request_numel``,
``response_numel``; token ids are exact in float64), so each side posts its receive before the
message exists. Commands share the request layout; a prefill sends its prompts in a second
message whose size the header gives. Imports torch only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import torch


class Cmd(IntEnum):
    SPEC = 0  # speculation request (one decode step)
    PREFILL = 1  # new batch: prompts follow in a second message
    EXIT = 2  # the worker leaves its loop
    FINISH = 3  # end of a batch: rank the last step's bonus tokens, report the last times
    PING = 4  # answer at once (handshake measurement)
    PROBE = 5  # time the draft's forwards on its device (executor.probe); answer wall, CPU s


REQUEST_HEADER = 6  # cmd, batch size, step, and room for a command's other numbers
REQUEST_FIELDS = 6  # seq, accepted_len, token, seq_len, live, num_fast (then k fast tokens)
RESPONSE_HEADER = 9  # batch size, then the DraftTimes fields in order
RESPONSE_FIELDS = 3  # cache_hit, num_proposals, prev_rank (then k tokens)


def request_numel(max_batch: int, k: int) -> int:
    return REQUEST_HEADER + max_batch * (REQUEST_FIELDS + k)


def response_numel(max_batch: int, k: int) -> int:
    return RESPONSE_HEADER + max_batch * (RESPONSE_FIELDS + k)


@dataclass
class SpecRequest:
    """One step's request for B sequences (tensors on the target's or the draft's device)."""

    seq: torch.Tensor  # [B] long, sequence ids
    accepted_len: torch.Tensor  # [B] long, -1 = no previous outcome (forced miss)
    token: torch.Tensor  # [B] long, the pending token
    seq_len: torch.Tensor  # [B] long, N: tokens so far, the pending one included
    live: torch.Tensor  # [B] bool
    fast_tokens: torch.Tensor  # [B, k] long
    num_fast: torch.Tensor  # [B] long

    @property
    def batch_size(self) -> int:
        return self.seq.shape[0]


@dataclass
class DraftTimes:
    """The draft's clock (time.perf_counter seconds, comparable across processes on one host).

    got_s/respond_s: this request received / its response sent; jit_s: jit decoding inside
    that window; prev_*: the pre-speculation that ran after the previous response (start, end,
    its glue forward and tree decode seconds, and the tree depth it reached: k, or less when
    the next request arrived first and the tree was cut short). 0 where unknown.
    """

    got_s: float = 0.0
    respond_s: float = 0.0
    jit_s: float = 0.0
    prev_prespec_start_s: float = 0.0
    prev_prespec_end_s: float = 0.0
    prev_glue_s: float = 0.0
    prev_tree_s: float = 0.0
    prev_tree_depth: float = 0.0

    def as_list(self) -> list[float]:
        return [
            self.got_s,
            self.respond_s,
            self.jit_s,
            self.prev_prespec_start_s,
            self.prev_prespec_end_s,
            self.prev_glue_s,
            self.prev_tree_s,
            self.prev_tree_depth,
        ]


@dataclass
class SpecResponse:
    """The draft's answer for B sequences; q [B, k, V] only when the target samples."""

    cache_hit: torch.Tensor  # [B] bool
    tokens: torch.Tensor  # [B, k] long, what to verify
    num_proposals: torch.Tensor  # [B] long
    prev_rank: torch.Tensor | None  # [B] long, previous step's bonus rank (0 = unknown)
    q: torch.Tensor | None = None
    times: DraftTimes = field(default_factory=DraftTimes)
    # bonus ranks of the step before the previous one (a shared-cache link learns them late)
    earlier_rank: list[int] | None = None


# -- packing --------------------------------------------------------------------------------
def pack_request(buf: torch.Tensor, cmd: Cmd, req: SpecRequest, step: int = 0) -> torch.Tensor:
    """Write cmd and req into buf (float64 [request_numel]) in place; returns buf."""
    b, k = req.fast_tokens.shape
    buf[:REQUEST_HEADER].zero_()
    buf[0], buf[1], buf[2] = float(cmd), float(b), float(step)
    rows = buf[REQUEST_HEADER : REQUEST_HEADER + b * (REQUEST_FIELDS + k)].view(
        b, REQUEST_FIELDS + k
    )
    for i, t in enumerate((req.seq, req.accepted_len, req.token, req.seq_len, req.live)):
        rows[:, i].copy_(t)
    rows[:, 5].copy_(req.num_fast)
    rows[:, REQUEST_FIELDS:].copy_(req.fast_tokens)
    return buf


def pack_command(buf: torch.Tensor, cmd: Cmd, *args: float) -> torch.Tensor:
    """A header-only message (PING, EXIT, PREFILL's header): cmd then up to five numbers."""
    buf[:REQUEST_HEADER].zero_()
    buf[0] = float(cmd)
    for i, a in enumerate(args):
        buf[1 + i] = float(a)
    return buf


def unpack_request(buf: torch.Tensor, k: int) -> tuple[Cmd, int, SpecRequest]:
    """(cmd, step, request) from a received request buffer."""
    cmd, b, step = Cmd(int(buf[0])), int(buf[1]), int(buf[2])
    rows = buf[REQUEST_HEADER : REQUEST_HEADER + b * (REQUEST_FIELDS + k)].view(
        b, REQUEST_FIELDS + k
    )
    ints = rows.long()
    req = SpecRequest(
        seq=ints[:, 0],
        accepted_len=ints[:, 1],
        token=ints[:, 2],
        seq_len=ints[:, 3],
        live=ints[:, 4] > 0,
        fast_tokens=ints[:, REQUEST_FIELDS:],
        num_fast=ints[:, 5],
    )
    return cmd, step, req


def pack_response(buf: torch.Tensor, resp: SpecResponse) -> torch.Tensor:
    b, k = resp.tokens.shape
    buf[0] = float(b)
    buf[1:RESPONSE_HEADER] = torch.tensor(resp.times.as_list(), dtype=torch.float64)
    rows = buf[RESPONSE_HEADER : RESPONSE_HEADER + b * (RESPONSE_FIELDS + k)].view(
        b, RESPONSE_FIELDS + k
    )
    rows[:, 0].copy_(resp.cache_hit)
    rows[:, 1].copy_(resp.num_proposals)
    if resp.prev_rank is None:
        rows[:, 2].zero_()
    else:
        rows[:, 2].copy_(resp.prev_rank)
    rows[:, RESPONSE_FIELDS:].copy_(resp.tokens)
    return buf


def unpack_response(buf: torch.Tensor, k: int, q: torch.Tensor | None) -> SpecResponse:
    """The response in buf; q: the [B, k, V] view of the shared q buffer (or None)."""
    b = int(buf[0])
    rows = buf[RESPONSE_HEADER : RESPONSE_HEADER + b * (RESPONSE_FIELDS + k)].view(
        b, RESPONSE_FIELDS + k
    )
    ints = rows.long()
    return SpecResponse(
        cache_hit=ints[:, 0] > 0,
        tokens=ints[:, RESPONSE_FIELDS:],
        num_proposals=ints[:, 1],
        prev_rank=ints[:, 2],
        q=q,
        times=DraftTimes(*buf[1:RESPONSE_HEADER].tolist()),
    )


def pack_prompts(prompts: list[list[int]], seq_ids: list[int]) -> torch.Tensor:
    """PREFILL's payload: seq ids [B], lengths [B], then every prompt's tokens (float64)."""
    flat = [float(t) for p in prompts for t in p]
    return torch.tensor(
        [float(s) for s in seq_ids] + [float(len(p)) for p in prompts] + flat,
        dtype=torch.float64,
    )


def unpack_prompts(payload: torch.Tensor, batch_size: int) -> tuple[list[list[int]], list[int]]:
    vals = payload.long().tolist()
    seq_ids = vals[:batch_size]
    lens = vals[batch_size : 2 * batch_size]
    prompts, at = [], 2 * batch_size
    for n in lens:
        prompts.append(vals[at : at + n])
        at += n
    return prompts, seq_ids
