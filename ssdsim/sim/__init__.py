"""Internals of the simulator: run plan, sampled outcomes, step costs, timelines, records.

``ssdsim.simulator.simulate`` is the public entry point. The pieces:

- ``plan``: validated inputs resolved once per run (chance at (T, C), lengths, random streams).
- ``outcomes``: per batch, what verification does to every sequence at every step (accepted
  length, tokens emitted, cache hit), sampled from seeded streams; independent of timing.
- ``costs``: the seconds of every forward and message of every step (``ssdsim.latency``).
- ``des``: the SimPy discrete-event model (devices as resources, link as stores): the reference.
- ``timeline``: the same protocol as a closed recurrence (the fast engine, tested equal to des).
- ``record``: the RunSummary (same numbers as ``trace.summary_from_steps``) and trace records.

Imports numpy and simpy; never torch, the executor or kernels.
"""
