"""Timelines of a trace: what the target and the draft did, step by step (Chrome trace export).

    python -m ssdsim.timeline run.jsonl -o run.chrome.json [--steps 0:20]

Open the JSON in chrome://tracing or https://ui.perfetto.dev. ``spans(trace)`` gives the same
intervals as plain tuples (lane, name, start_s, end_s, step) for plots. Per step:

- target lane: ``draft`` (SD drafting), ``fast`` (SSD: the fast speculator's proposals),
  ``await draft`` (SSD: request sent until the response arrived), ``verify`` (target forward and
  verification), ``host`` (the rest of the step: bookkeeping);
- draft lane (SSD): ``jit`` (missed rows decoded before responding; placed before the response
  by half the link time), ``prespec`` (glue and tree decode while the target verifies).

Works on executor and simulator traces alike (the shared schema). Never torch or the executor.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

from ssdsim._schema import SchemaError
from ssdsim.trace import StepRecord, Trace, read_trace

LANES = {"target": 1, "draft": 2}


class Span(NamedTuple):
    lane: str
    name: str
    start_s: float
    end_s: float
    step: int


def step_spans(s: StepRecord, mode: str) -> list[Span]:
    """The intervals of one step (empty ones dropped)."""
    v0 = s.verify_start_s if s.verify_start_s is not None else s.t_end_s - s.verify_s
    v1 = s.verify_end_s if s.verify_end_s is not None else v0 + s.verify_s
    out: list[Span] = []
    if mode == "ssd" and s.request_s is not None and s.response_s is not None:
        out.append(Span("target", "await draft", s.request_s, s.response_s, s.step))
        if s.draft_s > 0 and s.fallback == "fast":  # n-gram proposals, before the request
            out.append(Span("target", "fast", s.t_start_s, s.t_start_s + s.draft_s, s.step))
        elif s.draft_s > 0:  # jit: the draft decodes missed rows before it can respond
            respond = s.response_s - s.link_s / 2
            out.append(Span("draft", "jit", respond - s.draft_s, respond, s.step))
    elif mode == "sd" and s.draft_s > 0:
        out.append(Span("target", "draft", s.t_start_s, s.t_start_s + s.draft_s, s.step))
    out.append(Span("target", "verify", v0, v1, s.step))
    if s.t_end_s > v1:
        out.append(Span("target", "host", v1, s.t_end_s, s.step))
    if s.prespec_start_s is not None and s.prespec_end_s is not None:
        out.append(Span("draft", "prespec", s.prespec_start_s, s.prespec_end_s, s.step))
    return [x for x in out if x.end_s > x.start_s]


def spans(trace: Trace, first: int = 0, last: int | None = None) -> list[Span]:
    """Spans of steps first..last-1 (all by default)."""
    mode = trace.header.policy.get("mode", "ar")
    steps = trace.steps[first:last]
    return [x for s in steps for x in step_spans(s, mode)]


def chrome_trace(trace: Trace, first: int = 0, last: int | None = None) -> dict[str, Any]:
    """The Chrome trace-event JSON of a trace's steps (microseconds; one thread per device)."""
    events: list[dict[str, Any]] = [
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": lane}}
        for lane, tid in LANES.items()
    ]
    by_step = {s.step: s for s in trace.steps}
    for x in spans(trace, first, last):
        rec = by_step[x.step]
        args: dict[str, Any] = {"step": x.step}
        if x.name == "verify":
            args["accepted_len"] = [o.accepted_len for o in rec.seqs]
            if any(o.cache_hit is not None for o in rec.seqs):
                args["cache_hit"] = [o.cache_hit for o in rec.seqs]
        events.append(
            {
                "name": x.name,
                "ph": "X",
                "pid": 1,
                "tid": LANES[x.lane],
                "ts": x.start_s * 1e6,
                "dur": (x.end_s - x.start_s) * 1e6,
                "args": args,
            }
        )
    meta = {
        "source": trace.header.source,
        "policy": trace.header.policy,
        "workload": trace.header.workload,
    }
    return {"traceEvents": events, "displayTimeUnit": "ms", "metadata": meta}


def _steps_arg(text: str) -> tuple[int, int | None]:
    try:
        a, _, b = text.partition(":")
        first, last = int(a or 0), (int(b) if b else None)
    except ValueError:
        first, last = -1, None
    if first < 0 or (last is not None and last <= first):
        raise SchemaError(
            f"--steps {text!r}: expected FIRST:LAST with 0 <= FIRST < LAST, e.g. 0:20"
        )
    return first, last


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ssdsim.timeline", description=__doc__.splitlines()[0]
    )
    ap.add_argument("trace", help="trace file (JSON lines)")
    ap.add_argument("-o", "--out", type=Path, required=True, help="Chrome trace JSON to write")
    ap.add_argument("--steps", default="0:", help="FIRST:LAST steps to export (default: all)")
    args = ap.parse_args(argv)
    try:
        first, last = _steps_arg(args.steps)
        trace = read_trace(args.trace)
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = chrome_trace(trace, first, last)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out))
    print(f"wrote {args.out}: {len(out['traceEvents']) - len(LANES)} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
