"""The SimPy discrete-event model of AR, SD and SSD: the simulator's reference semantics.

Devices are SimPy resources; the draft-target link is a pair of stores whose messages are
delivered after their latency. Time advances only through ``env.timeout`` of the costs computed
by ``ssdsim.latency`` (via ``ssdsim.sim.costs``). SSD: the target sends a request and waits for
the response; the draft takes the request when it has finished pre-speculating for the previous
step, decodes missed rows on demand (jit), responds, then pre-speculates (glue + tree decode)
while the target verifies. ``ssdsim.sim.timeline.run_fast`` is the same model as a recurrence.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from ssdsim.sim.costs import StepCosts
from ssdsim.sim.timeline import Timeline


class Link:
    """One direction of the draft-target link: a message sent now arrives after its latency."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.store = simpy.Store(env)

    def send(self, message: Any, latency_s: float) -> None:
        arrival = self.env.timeout(latency_s, value=message)
        arrival.callbacks.append(lambda ev: self.store.put(ev.value))

    def receive(self) -> simpy.events.Event:
        return self.store.get()


def _one_device(env: simpy.Environment, mode: str, costs: StepCosts, tl: Timeline) -> Generator:
    """AR and SD: draft (SD) and target share one device, one step after another."""
    device = simpy.Resource(env, capacity=1)
    drafts = costs.draft or [0.0] * len(costs.verify)
    for d, v in zip(drafts, costs.verify, strict=True):
        tl.start.append(env.now)
        with device.request() as slot:
            yield slot
            if mode == "sd":
                yield env.timeout(d)
            tl.verify_start.append(env.now)
            yield env.timeout(v)
        tl.end.append(env.now)


def _ssd_target(
    env: simpy.Environment, costs: StepCosts, tl: Timeline, req: Link, resp: Link
) -> Generator:
    device = simpy.Resource(env, capacity=1)
    for t in range(len(costs.verify)):
        tl.start.append(env.now)
        tl.arrive.append(env.now + costs.link_req[t])
        req.send(t, costs.link_req[t])
        yield resp.receive()
        tl.receive.append(env.now)
        with device.request() as slot:
            yield slot
            if costs.fast[t] > 0:
                yield env.timeout(costs.fast[t])
            tl.verify_start.append(env.now)
            yield env.timeout(costs.verify[t])
        tl.end.append(env.now)


def _ssd_draft(
    env: simpy.Environment, costs: StepCosts, tl: Timeline, req: Link, resp: Link
) -> Generator:
    device = simpy.Resource(env, capacity=1)
    while True:
        t = yield req.receive()
        tl.serve.append(env.now)
        with device.request() as slot:
            yield slot
            if costs.draft[t] > 0:
                yield env.timeout(costs.draft[t])
            tl.respond.append(env.now)
            resp.send(t, costs.link_resp[t])
            yield env.timeout(costs.prespec[t])


def run_simpy(mode: str, costs: StepCosts, t0: float) -> Timeline:
    """Simulate one batch starting at ``t0`` (draft idle) and return its timeline."""
    env = simpy.Environment(initial_time=t0)
    tl = Timeline()
    if mode == "ssd":
        req, resp = Link(env), Link(env)
        env.process(_ssd_draft(env, costs, tl, req, resp))
        target = env.process(_ssd_target(env, costs, tl, req, resp))
    else:
        target = env.process(_one_device(env, mode, costs, tl))
    env.run(until=target)
    return tl
