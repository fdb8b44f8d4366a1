"""Paired measurement: several decoding policies interleaved prompt by prompt in one process.

Separate executor runs of ten seconds each see this shared machine at different speeds (two
passes of one validation point spread by a median 9%, at most 30%), so a comparison between
policies from separate runs is mostly noise. Here every policy decodes the same prompt one
after the other (B=1, greedy), each round over all prompts with the policies in a rotated
order, so the machine's drift falls on all of them alike; a policy's rate in a round is the
mean per-sequence tokens/s over the prompts, and a comparison is the median over rounds of the
per-round ratio (with its range).

    python studies/paired.py --policies policies.json --prompts out/loop3/prompts_valid.jsonl \\
        --num-prompts 12 --max-new-tokens 64 --rounds 5 -o paired.json

``policies.json``: ``{"name": <Policy JSON>, ...}`` (AR, SD or SSD). Greedy outputs are checked
against AR's on the first prompt before any timing (a policy that differs stops the run).
Writes ``{"rounds": R, "policies": {name: {"policy", "tokens_per_s", "rounds"}}}``. Not a
test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from executor.engines.ar import AREngine
from executor.engines.common import Sampling, generate
from executor.engines.sd import SDEngine
from executor.loader import resolve_pair
from executor.model.decoder import Decoder
from executor.prompts import load_prompt_ids
from executor.ssd.devices import plan_devices
from executor.ssd.remote import open_engine
from ssdsim.policy import Policy

log = logging.getLogger("paired")


def load_policies(path: Path) -> dict[str, Policy]:
    """Named policies from a JSON object (clear error on a bad file or entry)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"--policies {path}: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise SystemExit(f"--policies {path}: expected a non-empty object name -> policy")
    return {name: Policy.from_dict(p) for name, p in data.items()}


def _engine(policy: Policy, target: Decoder, draft: Decoder, draft_dir: Path, plan: Any):
    if policy.mode == "ar":
        return AREngine(target, Sampling())
    if policy.mode == "sd":
        return SDEngine(target, draft, Sampling(), policy.k)
    return open_engine(target, draft_dir, policy, Sampling(), plan, batch_size=1)


def _generate(engine: Any, prompts: list[list[int]], max_new_tokens: int) -> Any:
    """Greedy decoding of ``prompts`` one at a time (the run's result: outputs and summary)."""
    return generate(
        engine, prompts, batch_size=1, max_new_tokens=max_new_tokens, sampling=Sampling()
    )


def measure(
    engines: dict[str, Any], prompts: list[list[int]], rounds: int, max_new_tokens: int
) -> dict[str, list[float]]:
    """Per policy, per round, the mean per-sequence tokens/s over the prompts."""
    names = list(engines)
    rates: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        per: dict[str, list[float]] = {n: [] for n in names}
        for i, prompt in enumerate(prompts):
            first = (r + i) % len(names)  # who goes first rotates by prompt and by round
            for name in names[first:] + names[:first]:
                res = _generate(engines[name], [prompt], max_new_tokens)
                per[name].append(res.summary.tokens_per_s)
        for n in names:
            rates[n].append(statistics.fmean(per[n]))
        log.info(
            "round %d/%d: %s",
            r + 1,
            rounds,
            ", ".join(f"{n} {rates[n][-1]:.1f}" for n in names),
        )
    return rates


def run(
    policies: dict[str, Policy],
    pair_name: str,
    prompts_path: str,
    num_prompts: int | None,
    max_new_tokens: int,
    rounds: int,
) -> dict[str, Any]:
    """Load the pair and prompts, check outputs against AR, measure every round."""
    pair = resolve_pair(pair_name)
    prompts = load_prompt_ids(
        prompts_path, pair_name=pair.name, vocab_size=pair.vocab_size, num_prompts=num_prompts
    )
    target, draft = Decoder.from_dir(pair.target_dir), Decoder.from_dir(pair.draft_dir)
    engines: dict[str, Any] = {}
    plan = plan_devices("auto")  # once: an open SSD engine pins this process to the target's core
    try:
        for name, p in policies.items():
            engines[name] = _engine(p, target, draft, pair.draft_dir, plan)
        ar = AREngine(target, Sampling())
        want = _generate(ar, prompts[:1], max_new_tokens).outputs
        for name, e in engines.items():  # warm-up and the lossless guard
            got = _generate(e, prompts[:1], max_new_tokens).outputs
            if got != want:
                raise SystemExit(f"{name}: greedy output differs from AR's on the first prompt")
        rates = measure(engines, prompts, rounds, max_new_tokens)
    finally:
        for e in engines.values():
            if hasattr(e, "close"):
                e.close()
    return {
        "rounds": rounds,
        "prompts": prompts_path,
        "num_prompts": len(prompts),
        "max_new_tokens": max_new_tokens,
        "policies": {
            n: {
                "policy": policies[n].to_dict(),
                "label": policies[n].label(),
                "tokens_per_s": statistics.median(rates[n]),
                "rounds": rates[n],
            }
            for n in policies
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", type=Path, required=True, help="JSON: name -> policy")
    ap.add_argument("--pair", default="embedded")
    ap.add_argument("--prompts", default="code64", help="prompt set name or JSONL file")
    ap.add_argument("--num-prompts", type=int, default=12)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.rounds < 1 or args.max_new_tokens < 1:
        ap.error("--rounds and --max-new-tokens must be >= 1")
    policies = load_policies(args.policies)
    torch.set_num_threads(1)
    with torch.inference_mode():
        result = run(
            policies, args.pair, args.prompts, args.num_prompts, args.max_new_tokens, args.rounds
        )
    args.out.write_text(json.dumps(result, indent=1))
    for n, r in result["policies"].items():
        log.info(
            "%-14s %8.1f tok/s (median of %d rounds)  %s",
            n,
            r["tokens_per_s"],
            args.rounds,
            r["label"],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
