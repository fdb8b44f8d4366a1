"""The machine's speed just before a run: a short, fixed set of target forwards.

This shared machine drifts: in loop 10 the same validation point ran up to 15% faster or slower
from one quarter of an hour to the next, the same way for every point run in that stretch (the
passes' spread was mostly that drift, not scatter between runs). A prediction made from a
profile measured at another time cannot know that, but a probe taken just before the run can:
``speed_probe`` times ``forwards`` decode forwards of the target (one sequence, one token, a
``context``-token cache, as in AR decoding) and returns their mean wall and thread (CPU) time.

Measured here (2 vCPUs): a core switches between two speeds (forwards of 4.2 and 5.5 ms) for
stretches of a fraction of a second to minutes, and the two cores do so independently. A probe
taken once is one glimpse of that; ``executor.run --speed-probe`` probes just before and just
after decoding (0.4 s each) and records their mean. ``python studies/bench_probe.py`` (25 AR
runs of 12 prompts in a row, each between two probes), measured three times: while the machine
drifted, the mean probe correlated 0.89 with the runs' tokens/s and scaling by it cut their
spread from 9.2% to 4.4% (coefficient of variation); in two calmer stretches it correlated 0.57
and 0.28 and the spread went from 6.0% to 6.2% and from 4.9% to 5.5%. The probe is itself that
noisy: it pays where the drift is larger than a few percent, as over a loop's hour.
``ssdsim.validate`` divides a run's probe by the calibration runs' to say how much slower the
machine was, and reports its errors with and without that adjustment.

SSD's draft runs on the other core, which the target's probe does not see: an SSD run with
``--speed-probe`` also has its draft worker time the draft the same way on its own core
(``time_forwards``; ``draft_forward_s`` in the record), while the target waits. Over 15 SSD
runs in a row (k=8, one branch, fast misses, B=1: ``python studies/bench_probe.py --runs 15 --
--mode ssd --k 8 --fan-out 1,0,0,0,0,0,0,0,0 --fallback fast --fan-out-miss 1,0,0,0,0,0,0,0,0``)
the target's probe cut the spread of tokens/s from 6.7% to 4.9%, both probes (least squares in
log space, weights 0.50 and 0.43) to 3.4%.

Imports torch and executor only.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from executor.model.decoder import Decoder
from executor.profile_worker import Bench

PROBE_POINT = (1, 1, 64)  # batch, tokens per forward, context


def time_forwards(model: Decoder, forwards: int = 96, warmup: int = 12) -> tuple[float, float]:
    """Mean seconds per forward at ``PROBE_POINT`` of ``model`` on its device: wall and the
    thread's CPU time, after ``warmup`` untimed forwards (the target here, the draft in the SSD
    draft worker)."""
    if forwards < 1 or warmup < 0:
        raise ValueError(f"time_forwards: forwards {forwards} (>= 1), warmup {warmup} (>= 0)")
    call = Bench(model, [PROBE_POINT], "forward").call(PROBE_POINT)
    cuda = model.device.type == "cuda"
    with torch.inference_mode():
        for _ in range(warmup):
            call()
        if cuda:
            torch.cuda.synchronize(model.device)
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        for _ in range(forwards):
            call()
        if cuda:
            torch.cuda.synchronize(model.device)
        wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
    return wall / forwards, cpu / forwards


def speed_probe(model: Decoder, forwards: int = 96, warmup: int = 12) -> dict[str, float | int]:
    """Mean seconds per target forward at ``PROBE_POINT``: wall (``target_forward_s``) and the
    thread's CPU time (``target_forward_cpu_s``), after ``warmup`` untimed forwards."""
    wall, cpu = time_forwards(model, forwards, warmup)
    return {
        "target_forward_s": wall,
        "target_forward_cpu_s": cpu,
        "forwards": forwards,
        "context": PROBE_POINT[2],
    }


def around(
    before: dict[str, float | int],
    after: dict[str, float | int],
    draft: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """The record of a probe before and one after a run: their means, and each. ``draft``: the
    SSD draft worker's (wall, CPU) seconds per draft forward before and after, timed on its own
    core while the target waited (``draft_forward_s``, ``draft_before_s``, ``draft_after_s``)."""
    rec: dict[str, Any] = {
        "target_forward_s": (before["target_forward_s"] + after["target_forward_s"]) / 2,
        "target_forward_cpu_s": (before["target_forward_cpu_s"] + after["target_forward_cpu_s"])
        / 2,
        "before_s": before["target_forward_s"],
        "after_s": after["target_forward_s"],
        "forwards": before["forwards"],
        "context": before["context"],
    }
    if draft is not None:
        (b_wall, b_cpu), (a_wall, a_cpu) = draft
        rec.update(
            draft_forward_s=(b_wall + a_wall) / 2,
            draft_forward_cpu_s=(b_cpu + a_cpu) / 2,
            draft_before_s=b_wall,
            draft_after_s=a_wall,
        )
    return rec
