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

A core's speed also moves within a run of a few seconds (loop 19's validation: an AR run's
twelfth parts took 5.0 ms a step for its first third and 3.6-4.1 after). So the probe is also
taken between batches (``MARK_FORWARDS`` forwards, off the decode clock): the record's ``marks``
hold the decode clock's seconds at the start, between batches and at the end, each with the
target's (and SSD's draft's) seconds per forward there, and each stretch between two marks is
judged by the mean of its ends (``ssdsim.calibrate.speed``). Measured (ad hoc, 6 passes of 6
loop-19 points with loop 19's validation prompts, 0:16-0:19 on 2 Dec): the passes' coefficient
of variation of steps per second fell from 12.9% raw and 6.7% by the probe around the run to
2.7% by the marks at AR B=1, from 15.2 / 10.7 to 3.3% at AR B=4, 10.8 / 6.7 to 2.4% at SD k=4
B=1; SSD needs the draft's core too (k=4 uniform fast B=1: 8.5% raw, 6.7% around the run, 3.2%
with both cores' marks, least-squares weights).

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
MARK_FORWARDS, MARK_WARMUP = 16, 2  # the probe between batches (about 50 ms of target forwards)
DRAFT_MARK_FORWARDS = 64  # the draft's (a forward is about a tenth of the target's)


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


def mark(clock_s: float, target_s: float, draft_s: float | None = None) -> dict[str, Any]:
    """One point of a run's speed record: the decode clock's seconds and the seconds per target
    (and draft) forward a probe measured there."""
    return {"clock_s": clock_s, "target_forward_s": target_s, "draft_forward_s": draft_s}


def around(
    before: dict[str, float | int],
    after: dict[str, float | int],
    draft: tuple[tuple[float, float], tuple[float, float]] | None = None,
    marks: list[dict[str, Any]] | None = None,
    end_s: float | None = None,
) -> dict[str, Any]:
    """The record of a probe before and one after a run: their means, and each. ``draft``: the
    SSD draft worker's (wall, CPU) seconds per draft forward before and after, timed on its own
    core while the target waited (``draft_forward_s``, ``draft_before_s``, ``draft_after_s``).
    ``marks`` (``mark``, between batches) and ``end_s`` (the decode clock at the end): the
    record's ``marks`` run from the probe before (clock 0) through them to the probe after."""
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
    if end_s is not None:
        d0, d1 = (draft[0][0], draft[1][0]) if draft is not None else (None, None)
        rec["marks"] = [
            mark(0.0, rec["before_s"], d0),
            *(marks or []),
            mark(end_s, rec["after_s"], d1),
        ]
    return rec
