"""CLI: ``python -m executor.zoo build [--size full|smoke] [--seed S] [--force] [--threads N]``
and ``python -m executor.zoo latency [--size full|smoke]`` (re-measure a built pair's latencies).

Builds the embedded pair (or the smoke pair) into ``$SSDSIM_CACHE/zoo/`` and prints where it is
and what it measured. Does nothing when the pair is already built, unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import logging

from executor.zoo.builder import SUMMARY_FILE, build, remeasure_latency
from executor.zoo.recipe import RECIPES

HEADLINE = (
    "alpha_greedy",
    "top5_coverage",
    "alpha_teacher_forced",
    "repeat_fraction",
    "alpha_outside_loops",
    "latency_ratio",
    "latency_ratio_hf",
    "target_val_loss",
    "draft_val_loss",
    "build_s",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m executor.zoo", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a target/draft pair offline")
    b.add_argument(
        "--size",
        choices=sorted(RECIPES),
        default="full",
        help="full: 'embedded'; smoke: tiny test pair",
    )
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--force", action="store_true", help="rebuild even when already built")
    b.add_argument("--threads", type=int, default=2, help="torch threads for training (default 2)")
    m = sub.add_parser(
        "latency", help="measure a built pair's forward latencies again (updates summary.json)"
    )
    m.add_argument("--size", choices=sorted(RECIPES), default="full")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.command == "latency":
        pair = remeasure_latency(args.size)
        keys = [k for k in pair.summary if "latency_ratio" in k or k.endswith("token_s")]
        print(f"pair {pair.name!r}: " + json.dumps({k: pair.summary[k] for k in keys}))
        return 0
    if args.seed < 0 or args.threads < 1:
        parser.error("--seed must be >= 0 and --threads >= 1")
    pair = build(args.size, seed=args.seed, force=args.force, threads=args.threads)
    print(f"pair {pair.name!r}: {pair.pair_dir}")
    print(f"  target: {pair.target_dir}\n  draft:  {pair.draft_dir}")
    for name, path in sorted(pair.prompt_files.items()):
        print(f"  prompts {name}: {path}")
    print(f"  {SUMMARY_FILE}: " + json.dumps({k: pair.summary.get(k) for k in HEADLINE}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
