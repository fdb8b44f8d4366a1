"""Command line: simulate one decoding policy on a profile and print its summary.

    python -m ssdsim.simulate --profile paper-llama70b-h100 --mode ssd --k 7 --fan-out 3,3,3,3,3,3,3,3 \
        --batch-size 1 --temperature 0 --output-len 512 --num-prompts 32 --json
    python -m ssdsim.simulate --profile my_profile.json --policy policy.json --workload w.json --trace t.jsonl
    python -m ssdsim.simulate --list-profiles
    python -m ssdsim.simulate --profile out/loop21/calibrated.json --policy policy.json \
        --prompts out/loop21/prompts_valid.jsonl --num-prompts 12 --output-len 64 \
        --replay out/loop21/replay_valid.json      # T = 0: outcomes from the prompts' texts

Bad input is reported before anything is simulated (exit status 2, the message names the flag
or field). Imports only ssdsim (no torch).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from typing import Any

from ssdsim._schema import SchemaError
from ssdsim.policy import FALLBACKS, MODES, Policy, parse_int_list
from ssdsim.profile import list_presets, load_profile
from ssdsim.replay import load_replay
from ssdsim.simulator import ENGINES, simulate
from ssdsim.trace import RunSummary
from ssdsim.workload import Workload

DEFAULT_PROFILE = "embedded-cpu-calibrated"
POLICY_FLAGS = (
    "k",
    "fan_out",
    "fan_out_miss",
    "fallback",
    "rescale",
    "auto_threshold",
    "draft_temperature",
)


def _policy_flags(ap: argparse.ArgumentParser) -> None:
    pol = ap.add_argument_group("policy: --policy FILE, or --mode with its knobs")
    pol.add_argument("--policy", help="policy JSON file (as written by ssdsim.optimize)")
    pol.add_argument("--mode", choices=MODES)
    pol.add_argument("--k", type=int, help="lookahead: draft tokens per step (sd, ssd)")
    pol.add_argument(
        "--fan-out", help="ssd: k+1 comma-separated integers after a hit (default: 3 each)"
    )
    pol.add_argument(
        "--fan-out-miss", help="ssd: k+1 integers after a miss, same sum (default: --fan-out)"
    )
    pol.add_argument(
        "--fallback", choices=FALLBACKS, help="ssd: what serves a cache miss (default jit)"
    )
    pol.add_argument("--auto-threshold", type=int, help="ssd: batch size from which auto uses fast")
    pol.add_argument("--rescale", type=float, help="ssd: Saguaro sampling factor C in (0, 1]")
    pol.add_argument(
        "--draft-temperature", type=float, help="draft temperature (default: --temperature)"
    )


def _workload_flags(ap: argparse.ArgumentParser) -> None:
    wl = ap.add_argument_group("workload: --workload FILE, fields overridden by the flags given")
    wl.add_argument("--workload", help="workload JSON file")
    wl.add_argument("--batch-size", type=int)
    wl.add_argument("--temperature", type=float)
    wl.add_argument("--output-len", type=int, help="tokens generated per sequence")
    wl.add_argument(
        "--prompt-len", type=int, help="prompt tokens per sequence (without a prompt set)"
    )
    wl.add_argument("--num-prompts", type=int, help="sequences in the run, decoded in batches")
    wl.add_argument("--prompts", help="prompt set name or JSON-lines file (its prompt lengths)")
    wl.add_argument(
        "--replay",
        help="greedy texts of the prompts (python -m executor.replay; T = 0): accepted lengths "
        "and hits replayed from them instead of sampled",
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m ssdsim.simulate", description=__doc__.splitlines()[0]
    )
    ap.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"preset or profile JSON (default {DEFAULT_PROFILE})",
    )
    ap.add_argument(
        "--list-profiles", action="store_true", help="list the preset profiles and exit"
    )
    _policy_flags(ap)
    _workload_flags(ap)
    ap.add_argument(
        "--seed", type=int, help="seed of every random stream (default: the workload's)"
    )
    ap.add_argument(
        "--engine", choices=tuple(ENGINES), default="fast", help="fast or the SimPy reference"
    )
    ap.add_argument("--trace", help="write the per-step trace (JSON lines) to this file")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


def _flagged(flag: str, load: Any, value: str) -> Any:
    """Call ``load(value)``; a SchemaError names the flag that gave the value."""
    try:
        return load(value)
    except SchemaError as exc:
        raise SchemaError(f"{flag}: {exc}") from exc


def policy_from_args(args: argparse.Namespace) -> Policy:
    """The Policy from --policy FILE or from --mode and its knobs; errors name the flag."""
    given = [f"--{n.replace('_', '-')}" for n in POLICY_FLAGS if getattr(args, n) is not None]
    if args.policy is not None:
        if args.mode is not None or given:
            raise SchemaError(
                f"--policy: give either --policy FILE or --mode with its knobs, not both (also got {', '.join(given or ['--mode'])})"
            )
        return _flagged("--policy", Policy.load, args.policy)
    if args.mode is None:
        raise SchemaError("--mode: give --policy FILE or --mode ar|sd|ssd")
    kw: dict[str, Any] = {"mode": args.mode}
    if args.mode == "ar":
        if given:
            raise SchemaError(f"{given[0]}: not used by --mode ar")
        return Policy(**kw)
    if args.k is None:
        raise SchemaError(f"--k: required for --mode {args.mode} (draft tokens per step, >= 1)")
    kw["k"] = args.k
    if args.draft_temperature is not None:
        kw["draft_temperature"] = args.draft_temperature
    ssd_only = [g for g in given if g not in ("--k", "--draft-temperature")]
    if args.mode == "sd":
        if ssd_only:
            raise SchemaError(f"{ssd_only[0]}: only for --mode ssd")
        return Policy(**kw)
    kw["fan_out"] = parse_int_list(args.fan_out, "fan-out") if args.fan_out else (3,) * (args.k + 1)
    if args.fan_out_miss:
        kw["fan_out_miss"] = parse_int_list(args.fan_out_miss, "fan-out-miss")
    for name in ("fallback", "rescale", "auto_threshold"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    return Policy(**kw)


def workload_from_args(args: argparse.Namespace) -> Workload:
    base = _flagged("--workload", Workload.load, args.workload) if args.workload else Workload()
    changes: dict[str, Any] = {}
    for flag, field in (
        ("batch_size", "batch_size"),
        ("temperature", "temperature"),
        ("output_len", "output_len_tokens"),
        ("prompt_len", "prompt_len_tokens"),
        ("num_prompts", "num_prompts"),
        ("prompts", "prompts"),
    ):
        if getattr(args, flag) is not None:
            changes[field] = getattr(args, flag)
    try:
        return dataclasses.replace(base, **changes)
    except SchemaError as exc:
        flag = {
            "batch_size": "--batch-size",
            "temperature": "--temperature",
            "output_len_tokens": "--output-len",
            "prompt_len_tokens": "--prompt-len",
            "num_prompts": "--num-prompts",
            "prompts": "--prompts",
        }
        names = [flag[f] for f in changes if f"Workload.{f}" in str(exc)]
        raise SchemaError(f"{names[0] + ': ' if names else ''}{exc}") from exc


def format_summary(s: RunSummary) -> str:
    hit = f"{s.hit_rate:.3f}" if s.hit_rate is not None else "-"
    lines = [
        f"policy            {s.policy}",
        f"tokens/s per seq  {s.tokens_per_s:.1f}   (batch {s.batch_tokens_per_s:.1f}, B={s.batch_size}, T={s.temperature:g})",
        f"tokens per step   {s.tokens_per_step:.3f}   mean accepted {s.mean_accepted_len:.3f}   hit rate {hit}",
        f"steps             {s.steps}   tokens {s.generated_tokens}   decode {s.decode_s:.3f} s",
        f"time split (s)    verify {s.verify_s:.3f}  draft busy {s.draft_busy_s:.3f}  draft critical "
        f"{s.draft_critical_s:.3f}  wait {s.wait_s:.3f}  link {s.link_s:.3f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.list_profiles:
        for name in list_presets():
            desc = load_profile(name).description
            print(f"{name:24s} {desc[:100]}")
        return 0
    try:
        profile = _flagged("--profile", load_profile, args.profile)
        policy = policy_from_args(args)
        workload = workload_from_args(args)
        if args.seed is not None and args.seed < 0:
            raise SchemaError(f"--seed: got {args.seed}, expected an integer >= 0")
        replay = _flagged("--replay", load_replay, args.replay) if args.replay else None
        summary = simulate(
            profile,
            policy,
            workload,
            seed=args.seed,
            trace_path=args.trace,
            engine=args.engine,
            replay=replay,
        )
    except SchemaError as exc:
        ap.error(str(exc))
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
