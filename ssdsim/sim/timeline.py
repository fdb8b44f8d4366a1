"""When each step of a batch happens: the fast engine, and the Timeline both engines produce.

The SSD protocol (DESIGN.md section 2) as a recurrence on the target's clock, step t:

    request sent        start_t   = end_{t-1}                (batch start for t = 0)
    request arrives     arrive_t  = start_t + link_req_t
    draft serves it     serve_t   = max(arrive_t, free_t)    (free_t: previous pre-speculation done)
    response sent       respond_t = serve_t + jit_t          (jit: missed rows decoded on demand)
    response received   receive_t = respond_t + link_resp_t
    verify starts       vstart_t  = receive_t + fast_t       (fast speculator for missed rows)
    step ends           end_t     = vstart_t + verify_t
    draft free again    free_t+1  = respond_t + prespec_t    (glue + tree decode after responding)

SD: end_t = start_t + draft_t + verify_t on one device; AR: end_t = start_t + verify_t.
The additions happen in the same order as the SimPy model's timeouts (``ssdsim.sim.des``), so
both engines give bit-identical times (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ssdsim.sim.costs import StepCosts


@dataclass
class Timeline:
    """Per-step times (seconds from the start of decoding) of one batch."""

    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    arrive: list[float] = field(default_factory=list)
    serve: list[float] = field(default_factory=list)
    respond: list[float] = field(default_factory=list)
    receive: list[float] = field(default_factory=list)
    verify_start: list[float] = field(default_factory=list)


def run_fast(mode: str, costs: StepCosts, t0: float) -> Timeline:
    """The timeline of one batch starting at ``t0`` (the draft is idle then)."""
    tl = Timeline()
    end = t0
    if mode != "ssd":
        drafts = costs.draft or [0.0] * len(costs.verify)
        for d, v in zip(drafts, costs.verify, strict=True):
            tl.start.append(end)
            vstart = end + d if mode == "sd" else end
            end = vstart + v
            tl.verify_start.append(vstart)
            tl.end.append(end)
        return tl
    free = t0
    for req, jit, resp, fast, v, pre in zip(
        costs.link_req,
        costs.draft,
        costs.link_resp,
        costs.fast,
        costs.verify,
        costs.prespec,
        strict=True,
    ):
        arrive = end + req
        serve = arrive if arrive >= free else free
        respond = serve + jit
        receive = respond + resp
        vstart = receive + fast
        tl.start.append(end)
        end = vstart + v
        free = respond + pre
        tl.arrive.append(arrive)
        tl.serve.append(serve)
        tl.respond.append(respond)
        tl.receive.append(receive)
        tl.verify_start.append(vstart)
        tl.end.append(end)
    return tl
