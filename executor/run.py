"""``python -m executor.run``: decode a prompt set with AR, SD or SSD on a model pair; throughput and trace.

Examples::

    python -m executor.run --mode sd --pair embedded --prompts code64 --batch-size 4 \\
        --temperature 0 --max-new-tokens 128 --k 4 --seed 0 --trace out/sd.jsonl --json
    python -m executor.run --policy policy.json --pair embedded --prompts code64 --json
    python -m executor.run --mode ssd --k 4 --fan-out 4,2,1,1,2 --fallback jit --pair embedded \\
        --prompts code8 --devices auto --trace out/ssd.jsonl

SSD runs the draft in a second process (executor.ssd); its options are in executor.ssd.options.

Every argument, the pair's configs and the prompts are checked before any weights load; bad
input exits with status 2 and a message naming the problem. Prefill is excluded from decode
time. Imports the ssdsim contracts, executor and torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from executor.engines.ar import AREngine
from executor.engines.common import RunResult, Sampling, generate
from executor.engines.sd import SDEngine
from executor.loader import ModelPair, load_tokenizer, resolve_pair
from executor.model.config import parse_config
from executor.model.decoder import Decoder
from executor.probe import (
    DRAFT_MARK_FORWARDS,
    MARK_FORWARDS,
    MARK_WARMUP,
    around,
    mark,
    speed_probe,
    time_forwards,
)
from executor.prompts import load_prompt_ids
from executor.ssd.devices import DevicePlan, plan_devices
from executor.ssd.options import add_ssd_flags, check_policy_fits, policy_from_args
from executor.ssd.remote import open_engine
from ssdsim.policy import Policy
from ssdsim.trace import TraceHeader, TraceWriter
from ssdsim.workload import Workload

log = logging.getLogger(__name__)

INTERRUPTED = 130  # exit status after Ctrl-C


class RunError(ValueError):
    """Bad command-line input (reported before any model loads)."""


@dataclass(frozen=True)
class RunSpec:
    """Everything a run needs, checked: the pair, the prompts as ids, and the contract objects."""

    pair: ModelPair
    prompt_ids: list[list[int]]
    policy: Policy
    workload: Workload
    sampling: Sampling
    device: torch.device
    dtype: torch.dtype
    threads: int
    devices: DevicePlan | None = None  # ssd: where the target and draft processes run
    draft_timeout_s: float = 10.0
    speed_probe: bool = False  # time target forwards before and after decoding (executor.probe)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m executor.run",
        description="Decode prompts with AR, SD or SSD on a model pair.",
    )
    p.add_argument("--mode", choices=("ar", "sd", "ssd"), default=None, help="or --policy FILE")
    p.add_argument(
        "--pair", required=True, help="embedded, smoke, a pair directory, or TARGET_DIR,DRAFT_DIR"
    )
    p.add_argument("--prompts", required=True, help="prompt-set name or JSON-lines file")
    p.add_argument(
        "--num-prompts", type=int, default=None, help="first N prompts of the set (default: all)"
    )
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--draft-temperature", type=float, default=None)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--k", type=int, default=None, help="draft tokens per step (sd, ssd; default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--stop-at-eos", action="store_true", help="end sequences at EOS (default: ignore EOS)"
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="auto: float32 on CPU, bfloat16 on CUDA",
    )
    p.add_argument("--trace", type=Path, default=None, help="write the trace (JSON lines) here")
    p.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the text summary"
    )
    p.add_argument(
        "--speed-probe",
        action="store_true",
        help="time 96 target forwards before and after decoding (the machine's speed; in the report and trace)",
    )
    add_ssd_flags(p)
    return p


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise RunError(
            f"--device {name!r}: not a device name (expected cpu, cuda or cuda:N)"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"--device {name!r}: CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise RunError(f"--device {name!r}: expected cpu, cuda or cuda:N")
    return dev


def check_args(args: argparse.Namespace) -> RunSpec:
    """Validate everything (arguments, pair configs, prompts) without loading weights."""
    for name, low in (
        ("batch_size", 1),
        ("max_new_tokens", 1),
        ("threads", 1),
        ("seed", 0),
        ("k", 1),
    ):
        if getattr(args, name) is not None and getattr(args, name) < low:
            raise RunError(
                f"--{name.replace('_', '-')} {getattr(args, name)}: expected an integer >= {low}"
            )
    if args.num_prompts is not None and args.num_prompts < 1:
        raise RunError(f"--num-prompts {args.num_prompts}: expected an integer >= 1")
    device = _device(args.device)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}.get(
        args.dtype, torch.bfloat16 if device.type == "cuda" else torch.float32
    )
    policy = policy_from_args(args)
    sampling = Sampling(
        temperature=args.temperature, draft_temperature=policy.draft_temperature, seed=args.seed
    )
    devices = plan_devices(args.devices) if policy.mode == "ssd" else None
    pair = resolve_pair(args.pair)
    configs = [parse_config(dict(pair.target_config), str(pair.target_dir / "config.json"))]
    if policy.mode != "ar":
        configs.append(parse_config(dict(pair.draft_config), str(pair.draft_dir / "config.json")))
    ids = load_prompt_ids(
        args.prompts,
        pair_name=pair.name,
        vocab_size=pair.vocab_size,
        tokenizer=lambda: load_tokenizer(pair),
        num_prompts=args.num_prompts,
    )
    check_policy_fits(
        policy,
        vocab_size=pair.vocab_size,
        max_positions=min(c.max_position_embeddings for c in configs),
        longest_prompt=max(map(len, ids)),
        max_new_tokens=args.max_new_tokens,
    )
    workload = Workload(
        batch_size=args.batch_size,
        temperature=args.temperature,
        output_len_tokens=args.max_new_tokens,
        prompt_len_tokens=(min(map(len, ids)), max(map(len, ids))),
        prompts=args.prompts,
        num_prompts=len(ids),
        seed=args.seed,
        ignore_eos=not args.stop_at_eos,
        name=Path(args.prompts).stem,
    )
    return RunSpec(
        pair,
        ids,
        policy,
        workload,
        sampling,
        device,
        dtype,
        args.threads,
        devices,
        args.draft_timeout,
        args.speed_probe,
    )


def run(spec: RunSpec) -> RunResult:
    """Load the models and decode every prompt of the spec."""
    torch.set_num_threads(spec.threads)
    w = spec.workload
    if spec.policy.mode == "ssd":
        plan = spec.devices
        target = Decoder.from_dir(spec.pair.target_dir, device=plan.target, dtype=spec.dtype)
        with open_engine(
            target,
            spec.pair.draft_dir,
            spec.policy,
            spec.sampling,
            plan,
            batch_size=w.batch_size,
            timeout_s=spec.draft_timeout_s,
            threads=spec.threads,
        ) as engine:
            return _generate(engine, target, spec)
    target = Decoder.from_dir(spec.pair.target_dir, device=spec.device, dtype=spec.dtype)
    if spec.policy.mode == "sd":
        draft = Decoder.from_dir(spec.pair.draft_dir, device=spec.device, dtype=spec.dtype)
        engine = SDEngine(target, draft, spec.sampling, spec.policy.k)
    else:
        engine = AREngine(target, spec.sampling)
    return _generate(engine, target, spec)


def _generate(engine, target: Decoder, spec: RunSpec) -> RunResult:
    """Decode; with ``spec.speed_probe`` time the target just before and just after (SSD: its
    draft worker started and idle), so that every mode is probed alike, and briefly between
    batches (``executor.probe``'s marks); SSD then also times the draft on its own core (the
    worker, while the target waits)."""
    w = spec.workload
    before = speed_probe(target) if spec.speed_probe else None
    draft_probe = getattr(engine, "probe_draft", None) if spec.speed_probe else None
    draft_before = draft_probe() if draft_probe is not None else None
    marks: list[dict] = []

    def between(clock_s: float) -> None:
        t_wall, _ = time_forwards(target, MARK_FORWARDS, MARK_WARMUP)
        d = draft_probe(DRAFT_MARK_FORWARDS, MARK_WARMUP) if draft_before is not None else None
        marks.append(mark(clock_s, t_wall, d[0] if d is not None else None))

    result = generate(
        engine,
        spec.prompt_ids,
        batch_size=w.batch_size,
        max_new_tokens=w.output_len_tokens[0],
        sampling=spec.sampling,
        ignore_eos=w.ignore_eos,
        between_batches=between if before is not None else None,
    )
    if before is not None:
        after = speed_probe(target)
        draft_after = draft_probe() if draft_before is not None else None
        draft = (draft_before, draft_after) if draft_after is not None else None
        if draft is None:  # the draft lost mid-run: its marks say nothing of the whole run
            marks = [{**m, "draft_forward_s": None} for m in marks]
        end_s = result.steps[-1].t_end_s if result.steps else 0.0
        result.machine["speed_probe"] = around(before, after, draft, marks, end_s)
    return result


def write_trace(path: Path, spec: RunSpec, result: RunResult) -> None:
    header = TraceHeader(
        source="executor",
        policy=spec.policy.to_dict(),
        workload=spec.workload.to_dict(),
        models={
            "pair": spec.pair.name,
            "target": str(spec.pair.target_dir),
            "draft": str(spec.pair.draft_dir),
            "dtype": str(spec.dtype).removeprefix("torch."),
        },
        devices={
            "target": str(spec.device),
            "draft": str(spec.device),
            **(spec.devices.describe() if spec.devices is not None else {}),
            "threads": spec.threads,
            "cpu": platform.processor() or platform.machine(),
            **result.machine,
        },
        versions={"torch": torch.__version__, "python": platform.python_version()},
        seed=spec.sampling.seed,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    with TraceWriter(path, header) as writer:
        for step in result.steps:
            writer.step(step)
        if result.summary is not None:
            writer.summary(result.summary)


def report(spec: RunSpec, result: RunResult) -> dict[str, Any]:
    s = result.summary
    return {
        "mode": spec.policy.mode,
        "k": spec.policy.k,
        "pair": spec.pair.name,
        "batch_size": spec.workload.batch_size,
        "temperature": spec.sampling.temperature,
        "num_prompts": len(spec.prompt_ids),
        "tokens_per_s": s.tokens_per_s if s else 0.0,
        "batch_tokens_per_s": s.batch_tokens_per_s if s else 0.0,
        "mean_accepted_len": s.mean_accepted_len if s else 0.0,
        "tokens_per_step": s.tokens_per_step if s else 0.0,
        "decode_s": s.decode_s if s else 0.0,
        "prefill_s": result.prefill_s,
        "steps": s.steps if s else 0,
        "generated_tokens": sum(map(len, result.outputs)),
        **result.machine,
        "outputs": result.outputs,
        **(_ssd_report(s) if spec.policy.mode == "ssd" else {}),
    }


def _ssd_report(s) -> dict[str, Any]:
    extra = s.extra if s else {}
    return {
        "policy": s.policy if s else "",
        "hit_rate": s.hit_rate if s else 0.0,
        "ssd_efficiency": s.ssd_efficiency if s else 0.0,
        "handshake_p50_s": extra.get("handshake_p50_s", 0.0),
        "handshake_p99_s": extra.get("handshake_p99_s", 0.0),
        "draft_failure": extra.get("draft_failure"),
    }


def _print_summary(r: dict[str, Any]) -> None:
    label = r.get("policy") or (f"{r['mode']} k={r['k']}" if r["mode"] == "sd" else "ar")
    print(
        f"{label} | pair {r['pair']} | {r['num_prompts']} prompts, batch {r['batch_size']}, T={r['temperature']:g}"
    )
    print(
        f"decode {r['decode_s']:.3f} s over {r['steps']} steps (prefill {r['prefill_s']:.3f} s excluded)"
    )
    print(
        f"throughput {r['tokens_per_s']:.1f} tokens/s per sequence, {r['batch_tokens_per_s']:.1f} tokens/s for the batch"
    )
    print(
        f"mean accepted length {r['mean_accepted_len']:.3f}, {r['tokens_per_step']:.3f} tokens per step"
    )
    if r["mode"] == "ssd":
        print(
            f"hit rate {r['hit_rate']:.3f}, SSD efficiency {r['ssd_efficiency'] or 0:.3f}, "
            f"handshake p50 {r['handshake_p50_s'] * 1e6:.0f} us, p99 {r['handshake_p99_s'] * 1e6:.0f} us"
        )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        spec = check_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = run(spec)
    except KeyboardInterrupt:  # the draft worker is already stopped (engine closed)
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    if args.trace is not None:
        write_trace(args.trace, spec, result)
    out = report(spec, result)
    if args.json:
        print(json.dumps(out))
    else:
        _print_summary(out)
    return 0


if __name__ == "__main__":
    status = main()
    if status == INTERRUPTED:
        # Leave at once: the interpreter's teardown (torch, the process group's store) can take
        # seconds, and Ctrl-C must end the run within 5 s. The engine is closed; nothing to save.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
