"""A real run's trace beside the simulator's for the same policy and workload, part by part.

    python studies/trace_vs_sim.py out/loop11/calibrated.json \\
        out/loop11/validate/traces/sd_k8_b1_t0_r0.jsonl

For each executor trace: simulate its policy on the workload its header records (one seed),
then print, measured against simulated, the mean step, verification, drafting, wait and link
times of full-batch steps, the pre-speculation time, tokens per row (all, on hits, on misses),
the hit rate, a hit row's proposals (the tree depth it reached) and accepted
length, tokens/s per sequence, the number of full-batch steps, and the hit rate by the row
before (a hit or a miss, fully accepted or not). Where a validation
point misses, this says which part does. Never imports torch or the executor.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from ssdsim.policy import Policy
from ssdsim.profile import load_profile
from ssdsim.replay import applies, load_replay
from ssdsim.simulator import simulate
from ssdsim.trace import Trace, read_trace
from ssdsim.validate.compare import trace_workload

NAN = float("nan")


def _ms(values: list[float]) -> float:
    return 1e3 * statistics.fmean(values) if values else NAN


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else NAN


def parts(trace: Trace) -> dict[str, float]:
    """Per-step means over the full-batch steps of a trace (times in ms)."""
    batch = int(trace.header.workload.get("batch_size", 1))
    steps = trace.steps
    full = [s for s in steps if len(s.seqs) == batch]
    seqs = [{o.seq for o in s.seqs} for s in steps]
    durations = [  # start to start, while the same batch runs on
        b.t_start_s - a.t_start_s
        for a, b, sa, sb in zip(steps, steps[1:], seqs, seqs[1:], strict=False)
        if len(a.seqs) == batch and sb <= sa
    ]
    rows = [o for s in full for o in s.seqs]
    hits = [o.emitted_tokens for o in rows if o.cache_hit]
    misses = [o.emitted_tokens for o in rows if not o.cache_hit]
    prespec = [
        s.prespec_end_s - s.prespec_start_s
        for s in full
        if s.prespec_end_s is not None and s.prespec_start_s is not None
    ]
    return {
        "step_ms": _ms(durations),
        "verify_ms": _ms([s.verify_s for s in full]),
        "draft_ms": _ms([s.draft_s for s in full]),
        "wait_ms": _ms([s.wait_s for s in full]),
        "link_ms": _ms([s.link_s for s in full]),
        "prespec_ms": _ms(prespec),
        "tokens_per_row": _mean([o.emitted_tokens for o in rows]),
        "hit_rate": len(hits) / len(rows) if rows else NAN,
        "tokens_on_hit": _mean(hits),
        "tokens_on_miss": _mean(misses),
        "proposed_on_hit": _mean([o.proposed for o in rows if o.cache_hit]),
        "accepted_on_hit": _mean([o.accepted_len for o in rows if o.cache_hit]),
        "tokens_per_s": trace.summary.tokens_per_s if trace.summary else NAN,
        "full_steps": float(len(full)),
        **hit_after(trace),
    }


def hit_after(trace: Trace) -> dict[str, float]:
    """A row's hit rate by the same sequence's row before it: a hit or a miss (jit or fast
    proposals), all its proposals accepted (full) or not (part); every step counts."""
    before: dict[int, tuple[bool, bool]] = {}
    counts = {f"hit_after_{a}_{b}": [0, 0] for a in ("hit", "miss") for b in ("full", "part")}
    for step in trace.steps:
        for o in step.seqs:
            prev = before.get(o.seq)
            if prev is not None and o.proposed > 0 and o.cache_hit is not None:
                cell = counts[
                    f"hit_after_{'hit' if prev[0] else 'miss'}_{'full' if prev[1] else 'part'}"
                ]
                cell[0] += int(o.cache_hit)
                cell[1] += 1
            before[o.seq] = (o.cache_hit, o.proposed > 0 and o.accepted_len == o.proposed)
    return {k: hit / n if n else NAN for k, (hit, n) in counts.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("profile", help="profile JSON or preset name")
    ap.add_argument("traces", nargs="+", type=Path, help="executor traces (JSON lines)")
    ap.add_argument("--seed", type=int, default=None, help="simulator seed (default: the run's)")
    ap.add_argument(
        "--replay",
        type=Path,
        help="greedy texts of the run's prompts (python -m executor.replay): T = 0 runs replay "
        "their outcomes instead of sampling them",
    )
    args = ap.parse_args(argv)
    missing = [str(p) for p in args.traces if not p.is_file()]
    if missing:
        ap.error(f"no such trace file: {', '.join(missing)}")
    profile = load_profile(args.profile)
    replay = load_replay(args.replay) if args.replay else None
    for path in args.traces:
        measured = read_trace(path)
        policy = Policy.from_dict(measured.header.policy)
        workload = trace_workload(str(path))
        seed = workload.seed if args.seed is None else args.seed
        with tempfile.TemporaryDirectory() as d:
            simulate(
                profile,
                policy,
                workload,
                seed=seed,
                trace_path=Path(d) / "sim.jsonl",
                replay=replay if applies(policy, workload) else None,
            )
            simulated = read_trace(Path(d) / "sim.jsonl")
        m, s = parts(measured), parts(simulated)
        print(f"{path}: {policy.label()}, B={workload.batch_size}, T={workload.temperature:g}")
        for key in m:
            ratio = s[key] / m[key] if m[key] else NAN
            print(
                f"  {key:15s} measured {m[key]:9.3f}  simulated {s[key]:9.3f}  ratio {ratio:6.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
