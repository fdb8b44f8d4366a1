"""Does the speed probe see the machine's speed? Runs in a row, each between two probes.

    python studies/bench_probe.py                      # 25 AR runs, 12 code64 prompts x 64 tokens
    python studies/bench_probe.py --runs 40 --forwards 48
    python studies/bench_probe.py --runs 15 -- --mode ssd --k 8 --fan-out 1,0,0,0,0,0,0,0,0 \\
        --fallback fast --fan-out-miss 1,0,0,0,0,0,0,0,0

The same prompts are decoded greedily ``--runs`` times (``executor.run``'s arguments after
``--``: AR by default). AR keeps one loaded target in this process (one torch thread) and times
it with ``executor.probe.speed_probe`` just before and after each decode; any other mode runs
``executor.run`` whole (``--speed-probe``), whose SSD draft worker also times the draft on its
own core. Prints each run and then, per probe (target before, after, their mean; the draft's;
and the least-squares mix of both cores in log space): the correlation between the probe's
speed (1 / seconds per forward) and the run's tokens/s, and the runs' coefficient of variation
of tokens/s as measured and once scaled by the probe (each run's tokens/s x its probe / the
mean probe). A probe that sees the machine cuts the second well below the first.
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
from executor.run import build_parser, check_args, run

log = logging.getLogger("bench_probe")


def _ar_runs(spec, runs: int, forwards: int) -> list[tuple[float, float, float, float]]:
    """(target before, after, draft (nan), tokens/s) of AR runs with one loaded target."""
    torch.set_num_threads(1)
    target = Decoder.from_dir(spec.pair.target_dir, device=spec.device, dtype=spec.dtype)
    rows = []
    for _ in tqdm(range(runs), desc="runs", unit="run"):
        before = speed_probe(target, forwards=forwards)["target_forward_s"]
        result = generate(
            AREngine(target, spec.sampling),
            spec.prompt_ids,
            batch_size=spec.workload.batch_size,
            max_new_tokens=spec.workload.output_len_tokens[0],
            sampling=spec.sampling,
        )
        after = speed_probe(target, forwards=forwards)["target_forward_s"]
        rows.append((before, after, float("nan"), result.summary.tokens_per_s))
        log.info(f"probe {before * 1e3:.3f} / {after * 1e3:.3f} ms, {rows[-1][3]:.1f} tokens/s")
    return rows


def _runs(spec, runs: int) -> list[tuple[float, float, float, float]]:
    """(target before, after, draft mean (nan without), tokens/s) of whole executor runs."""
    rows = []
    for _ in tqdm(range(runs), desc="runs", unit="run"):
        result = run(spec)
        p = result.machine["speed_probe"]
        draft = p.get("draft_forward_s", float("nan"))
        rows.append((p["before_s"], p["after_s"], draft, result.summary.tokens_per_s))
        log.info(
            f"target {p['before_s'] * 1e3:.3f} / {p['after_s'] * 1e3:.3f} ms, draft "
            f"{draft * 1e3:.3f} ms, {rows[-1][3]:.1f} tokens/s"
        )
    return rows


def _report(name: str, probe: np.ndarray, tps: np.ndarray, cv: float) -> None:
    corr = float(np.corrcoef(1 / probe, tps)[0, 1])
    adjusted = tps * probe / probe.mean()
    log.info(
        f"probe {name:14s}: correlation with tokens/s {corr:5.2f}; spread of tokens/s "
        f"(coefficient of variation) {cv:.1%} measured, {np.std(adjusted) / np.mean(adjusted):.1%} "
        "scaled"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], usage="%(prog)s [options] [-- executor.run args]"
    )
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--forwards", type=int, default=96, help="forwards per probe (default 96, AR)")
    ap.add_argument("--pair", default="embedded")
    ap.add_argument("--prompts", default="code64")
    ap.add_argument("--num-prompts", type=int, default=12)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("run_args", nargs="*", help="executor.run's policy arguments (after --)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.runs < 3 or args.forwards < 1:
        ap.error(f"--runs {args.runs} (>= 3), --forwards {args.forwards} (>= 1)")
    run_args = list(args.run_args) or ["--mode", "ar"]
    run_args += ["--pair", args.pair, "--prompts", args.prompts, "--speed-probe"]
    run_args += [
        "--num-prompts",
        str(args.num_prompts),
        "--max-new-tokens",
        str(args.max_new_tokens),
    ]
    spec = check_args(build_parser().parse_args(run_args))
    mode = spec.policy.mode
    rows = _ar_runs(spec, args.runs, args.forwards) if mode == "ar" else _runs(spec, args.runs)
    x = np.array(rows)
    tps = x[:, 3]
    cv = float(np.std(tps) / np.mean(tps))
    log.info(
        f"{args.runs} {spec.policy.label()} runs of {args.num_prompts} prompts x "
        f"{args.max_new_tokens} tokens, B={spec.workload.batch_size}"
    )
    target = (x[:, 0] + x[:, 1]) / 2
    for name, probe in (("target before", x[:, 0]), ("target after", x[:, 1]), ("target", target)):
        _report(name, probe, tps, cv)
    if not np.isnan(x[:, 2]).any():
        _report("draft", x[:, 2], tps, cv)
        # log tokens/s = c - a log(target probe) - b log(draft probe): the cores' weights
        design = np.column_stack([np.ones(len(tps)), np.log(target), np.log(x[:, 2])])
        coef, *_ = np.linalg.lstsq(design, np.log(tps), rcond=None)
        a, b = -coef[1], -coef[2]
        log.info(f"least squares: tokens/s ~ target probe^-{a:.2f} x draft probe^-{b:.2f}")
        _report("mix (fitted)", target**a * x[:, 2] ** b, tps, cv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
