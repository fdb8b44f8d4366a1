"""Simulate AR, SD or SSD decoding of a workload on a profile: ``simulate(profile, policy, workload)``.

The public entry point of the simulator (the optimizer calls it thousands of times). A run:
resolve the inputs (``ssdsim.sim.plan``), then per static batch sample the outcomes
(``outcomes``), cost every step (``costs``; with ``Profile.doorbell`` SSD samples again with
the tree depths the first pass's costs allow), lay the steps out in time with an engine, and
record the summary (and, with ``trace_path``, a JSON-lines trace in the shared schema).

Engines: ``simpy`` is the reference discrete-event model (``ssdsim.sim.des``); ``fast`` (the
default) computes the same timeline as a recurrence (``ssdsim.sim.timeline``) several times
faster; tests check the two give identical traces. Imports numpy and simpy; never torch.

Example::

    from ssdsim import Workload, load_profile, paper_default
    from ssdsim.simulator import simulate
    s = simulate(load_profile("paper-llama70b-h100"), paper_default(), Workload(output_len_tokens=512))
    print(s.tokens_per_s, s.hit_rate)
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ssdsim._schema import SchemaError
from ssdsim.policy import Policy
from ssdsim.profile import Profile
from ssdsim.replay import Replay
from ssdsim.sim.costs import step_costs
from ssdsim.sim.des import run_simpy
from ssdsim.sim.outcomes import sample_batch
from ssdsim.sim.plan import Plan, make_plan
from ssdsim.sim.record import Recorder
from ssdsim.sim.timeline import run_fast
from ssdsim.trace import RunSummary, TraceHeader, TraceWriter
from ssdsim.workload import Workload

log = logging.getLogger(__name__)
ENGINES = {"fast": run_fast, "simpy": run_simpy}


def simulate(
    profile: Profile,
    policy: Policy,
    workload: Workload,
    *,
    seed: int | None = None,
    trace_path: str | Path | None = None,
    engine: str = "fast",
    replay: Replay | None = None,
) -> RunSummary:
    """Simulate one decoding run and return its summary.

    seed: seed of every random stream (None: ``workload.seed``); the same inputs and seed give
    the same summary and trace. trace_path: write the per-step trace there (slower).
    engine: ``fast`` (default) or ``simpy`` (the reference; same results).
    replay: the workload's greedy texts (``ssdsim.replay``; T = 0 only): accepted lengths and
    cache hits replayed from them instead of sampled from the profile's chance.
    Raises SchemaError (a ValueError) on bad input before simulating.
    """
    if engine not in ENGINES:
        raise SchemaError(f"simulate: engine got {engine!r}, expected one of {', '.join(ENGINES)}")
    plan = make_plan(profile, policy, workload, seed, replay)
    recorder = Recorder(plan, keep_steps=trace_path is not None)
    t0 = 0.0
    for b, seq_ids in enumerate(plan.batches()):
        out = sample_batch(plan, b, seq_ids)
        costs = step_costs(plan, out, b)
        if plan.mode == "ssd" and profile.doorbell:  # hits carry the depth the trees reached
            out = sample_batch(plan, b, seq_ids, costs.depth)
            costs = step_costs(plan, out, b)
        tl = ENGINES[engine](plan.mode, costs, t0)
        recorder.add_batch(out, costs, tl)
        t0 = tl.end[-1]
    extra = {
        "engine": engine,
        "seed": plan.seed,
        "profile": profile.name,
        "chance": "replay" if replay is not None else plan.chance.source,
    }
    if plan.mode == "ssd":
        extra["fallback"] = plan.miss_kind
    summary = recorder.summary(extra)
    if trace_path is not None:
        _write_trace(Path(trace_path), plan, recorder, summary)
    log.debug("simulated %s: %.1f tokens/s per sequence", policy.label(), summary.tokens_per_s)
    return summary


def _versions() -> dict[str, Any]:
    out: dict[str, Any] = {"numpy": np.__version__}
    for pkg in ("ssdsim", "simpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _write_trace(path: Path, plan: Plan, recorder: Recorder, summary: RunSummary) -> None:
    prov = plan.profile.provenance
    header = TraceHeader(
        source="simulator",
        policy=plan.policy.to_dict(),
        workload=plan.workload.to_dict(),
        profile=plan.profile.name,
        models=dict(prov.get("models", {})) if isinstance(prov.get("models"), dict) else {},
        devices=dict(prov.get("devices", {})) if isinstance(prov.get("devices"), dict) else {},
        versions=_versions(),
        seed=plan.seed,
    )
    with TraceWriter(path, header) as writer:
        for record in recorder.records:
            writer.step(record)
        writer.summary(summary)
    log.info("wrote trace %s (%d steps)", path, len(recorder.records))
