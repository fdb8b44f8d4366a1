"""Does the speed probe see the machine's speed? AR runs in a row, each between two probes.

    python studies/bench_probe.py                      # 25 runs, 12 code64 prompts x 64 tokens
    python studies/bench_probe.py --runs 40 --forwards 48

One process, one torch thread: the target decodes the same prompts greedily ``--runs`` times,
with ``executor.probe.speed_probe`` just before and just after each decode. Prints each run and
then, for the probe before, after, and their mean: the correlation between the probe's speed
(1 / seconds per forward) and the run's tokens/s, and the runs' coefficient of variation of
tokens/s as measured and once scaled by the probe (each run's tokens/s x its probe / the mean
probe). A probe that sees the machine cuts the second well below the first.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch
from tqdm import tqdm

from executor.engines.ar import AREngine
from executor.engines.common import generate
from executor.model.decoder import Decoder
from executor.probe import speed_probe
from executor.run import build_parser, check_args

log = logging.getLogger("bench_probe")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--forwards", type=int, default=96, help="forwards per probe (default 96)")
    ap.add_argument("--pair", default="embedded")
    ap.add_argument("--prompts", default="code64")
    ap.add_argument("--num-prompts", type=int, default=12)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.runs < 3 or args.forwards < 1:
        ap.error(f"--runs {args.runs} (>= 3), --forwards {args.forwards} (>= 1)")
    run_args = ["--mode", "ar", "--pair", args.pair, "--prompts", args.prompts]
    run_args += [
        "--num-prompts",
        str(args.num_prompts),
        "--max-new-tokens",
        str(args.max_new_tokens),
    ]
    spec = check_args(build_parser().parse_args(run_args))
    torch.set_num_threads(1)
    target = Decoder.from_dir(spec.pair.target_dir, device=spec.device, dtype=spec.dtype)
    rows = []
    for _ in tqdm(range(args.runs), desc="runs", unit="run"):
        before = speed_probe(target, forwards=args.forwards)["target_forward_s"]
        result = generate(
            AREngine(target, spec.sampling),
            spec.prompt_ids,
            batch_size=1,
            max_new_tokens=args.max_new_tokens,
            sampling=spec.sampling,
        )
        after = speed_probe(target, forwards=args.forwards)["target_forward_s"]
        rows.append((before, after, result.summary.tokens_per_s))
        log.info(f"probe {before * 1e3:.3f} / {after * 1e3:.3f} ms, {rows[-1][2]:.1f} tokens/s")
    x = np.array(rows)
    tps = x[:, 2]
    cv = float(np.std(tps) / np.mean(tps))
    log.info(f"{args.runs} AR runs of {args.num_prompts} prompts x {args.max_new_tokens} tokens")
    for name, probe in (
        ("before", x[:, 0]),
        ("after", x[:, 1]),
        ("mean of both", (x[:, 0] + x[:, 1]) / 2),
    ):
        corr = float(np.corrcoef(1 / probe, tps)[0, 1])
        adjusted = tps * probe / probe.mean()
        log.info(
            f"probe {name:12s}: correlation with tokens/s {corr:.2f}; spread of tokens/s "
            f"(coefficient of variation) {cv:.1%} measured, {np.std(adjusted) / np.mean(adjusted):.1%} scaled"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
