"""Benchmark the simulator: simulated SSD decode steps per second at B=1 and B=32.

Prints one JSON object. ``steps_per_s_b1`` / ``steps_per_s_b32`` use the default (fast) engine,
``simpy_steps_per_s_*`` the SimPy reference engine, on the paper preset with the paper's SSD
policy (k=7, uniform fan-out 3, jit), 512 output tokens per sequence. A step is one decode step
of the whole batch. Not a test: run it on a quiet machine and compare numbers measured side by side.

    python studies/bench_simulator.py [--seconds 3] [--profile paper-llama70b-h100]
"""

from __future__ import annotations

import argparse
import json
import time

from ssdsim import Workload, load_profile, paper_default
from ssdsim.simulator import simulate


def steps_per_s(profile, batch_size: int, engine: str, seconds: float) -> float:
    wl = Workload(batch_size=batch_size, output_len_tokens=512, num_prompts=max(8, 2 * batch_size))
    simulate(profile, paper_default(), wl, engine=engine)  # warm-up
    steps, seed, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        steps += simulate(profile, paper_default(), wl, seed=seed, engine=engine).steps
        seed += 1
    return steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="wall time per measurement")
    ap.add_argument("--profile", default="paper-llama70b-h100")
    args = ap.parse_args(argv)
    prof = load_profile(args.profile)
    out = {
        "steps_per_s_b1": steps_per_s(prof, 1, "fast", args.seconds),
        "steps_per_s_b32": steps_per_s(prof, 32, "fast", args.seconds),
        "simpy_steps_per_s_b1": steps_per_s(prof, 1, "simpy", args.seconds),
        "simpy_steps_per_s_b32": steps_per_s(prof, 32, "simpy", args.seconds),
        "profile": prof.name,
        "policy": paper_default().label(),
        "output_len_tokens": 512,
    }
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
