"""Matrix kernels on CPU: whole target and draft forwards per row count, kernel paths interleaved.

For each model of the pair and each shape (batch B x tokens n per forward, at a context of
``--context`` positions), times one ``Decoder.forward`` under every CPU kernel path of
``executor.model.matrix`` (auto, blas, onednn, linear) in round-robin order, ``--repeats``
times, and prints the median milliseconds per path and the ratio to the previous rule (blas).
Interleaving puts the machine's drift on every path alike. One torch thread.

    python studies/bench_matrix.py
    python studies/bench_matrix.py --pair smoke --repeats 20

Ends with one JSON line: per model, per shape, the median ms of each path. Not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from executor.loader import resolve_pair
from executor.model import matrix
from executor.model.decoder import Decoder
from studies.bench_runtime import random_pair

log = logging.getLogger("bench_matrix")

SHAPES = [(1, 1), (1, 2), (1, 3), (1, 5), (1, 9), (4, 1), (4, 3), (8, 1), (8, 2), (8, 3), (8, 5)]
BRANCH_ROWS = [8, 24, 48, 96]


def time_forward(model: Decoder, b: int, n: int, context: int) -> float:
    cache = model.new_cache(b, context + n + 1)
    start = torch.full((b,), context, dtype=torch.long)
    cache.lengths.fill_(context)
    tokens = torch.randint(0, model.config.vocab_size, (b, n))
    t = time.perf_counter()
    model.forward(tokens, start, cache)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pair", default="embedded")
    ap.add_argument("--context", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_matrix_"))
    try:
        pair = resolve_pair(args.pair)
        dirs = {"target": pair.target_dir, "draft": pair.draft_dir}
    except ValueError as exc:
        log.warning("pair %s unusable (%s): random-init pair", args.pair, exc)
        t, d = random_pair(tmp)
        dirs = {"target": t, "draft": d}
    paths = matrix.CPU_KERNELS
    result: dict[str, dict[str, dict[str, float]]] = {}
    with torch.inference_mode():
        for name, path in dirs.items():
            model = Decoder.from_dir(path)
            shapes = SHAPES + ([(r, 1) for r in BRANCH_ROWS] if name == "draft" else [])
            result[name] = {}
            log.info(
                "%s: ms per forward, context %d, median of %d", name, args.context, args.repeats
            )
            log.info("%8s " + " ".join(f"{p:>8}" for p in paths) + "  auto/blas", "B x n")
            for b, n in shapes:
                times: dict[str, list[float]] = {p: [] for p in paths}
                for p in paths:  # warm-up
                    matrix.set_cpu_kernels(p)
                    time_forward(model, b, n, args.context)
                for _ in range(args.repeats):
                    for p in paths:
                        matrix.set_cpu_kernels(p)
                        times[p].append(time_forward(model, b, n, args.context))
                med = {p: statistics.median(v) * 1e3 for p, v in times.items()}
                result[name][f"{b}x{n}"] = med
                log.info(
                    "%8s " + " ".join(f"{med[p]:8.2f}" for p in paths) + "  %.2f",
                    f"{b}x{n}",
                    med["auto"] / med["blas"],
                )
    matrix.set_cpu_kernels("auto")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
