"""Measure forward latencies of the embedded CPU model pair and fit the Profile's CPU model.

Builds randomly initialised Llama models shaped like the project's embedded pair (target: hidden
384, 6 layers; draft: hidden 192, 2 layers; vocab 4096; float32) with Hugging Face transformers,
runs them with one torch thread, times forward passes of B sequences x n new tokens over a
KV cache of c tokens, and fits ``t = fixed_s + token_s*B*n + attn_s*B*n*c + kv_s*B*c`` by
non-negative least squares. Prints one JSON object (the fitted ForwardLatency fields per model and
the raw times). ``--write-preset`` also writes ``ssdsim/presets/embedded-cpu.json`` from the fit
(``--from-json`` refits a saved measurement instead of measuring). Calibration replaces it.

    nice -n 10 python studies/measure_cpu_forward.py --reps 15 > cpu_forward.json
    python studies/measure_cpu_forward.py --from-json cpu_forward.json --write-preset
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
import time

import numpy as np
import torch
from scipy.optimize import nnls
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from ssdsim.profile import PRESETS_DIR, Chance, Coverage, ForwardLatency, LinkLatency, Profile

MODELS = {
    "target": dict(
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=6,
        num_key_value_heads=6,
        intermediate_size=1024,
    ),
    "draft": dict(
        hidden_size=192,
        num_hidden_layers=2,
        num_attention_heads=3,
        num_key_value_heads=3,
        intermediate_size=512,
    ),
}
GRID_B = (1, 4, 16)
GRID_N = (1, 8, 32)
GRID_C = (64, 512)


def build(shape: dict) -> LlamaForCausalLM:
    cfg = LlamaConfig(
        vocab_size=4096, max_position_embeddings=4096, tie_word_embeddings=True, **shape
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval()


@torch.no_grad()
def time_forward(model: LlamaForCausalLM, b: int, n: int, c: int, reps: int) -> tuple[float, float]:
    """(median thread CPU seconds, minimum wall seconds) of one forward of b x n tokens over c cached.

    The fit uses the thread's CPU time: with one torch thread it is the forward's cost, and unlike
    wall time it does not count the time other processes on this shared machine hold the core.
    """
    ids = torch.randint(0, 4096, (b, c))
    cache = DynamicCache()
    model(input_ids=ids, past_key_values=cache, use_cache=True)
    new = torch.randint(0, 4096, (b, n))
    pos = torch.arange(c, c + n).expand(b, n)
    cpu, wall = [], []
    for _ in range(reps):
        t0, w0 = time.thread_time(), time.perf_counter()
        model(input_ids=new, position_ids=pos, past_key_values=cache, use_cache=True)
        cpu.append(time.thread_time() - t0)
        wall.append(time.perf_counter() - w0)
        cache.crop(-n)  # back to c cached tokens
    return statistics.median(cpu), min(wall)


def fit(rows: list[tuple[int, int, int, float, float]]) -> dict:
    x = np.array([[1.0, b * n, b * n * c, b * c] for b, n, c, *_ in rows])
    y = np.array([r[3] for r in rows])
    coef, _ = nnls(x, y)
    pred = x @ coef
    rel = np.abs(pred - y) / y
    return {
        "fixed_s": coef[0],
        "token_s": coef[1],
        "attn_s": coef[2],
        "kv_s": coef[3],
        "max_rel_err": float(rel.max()),
        "median_rel_err": float(np.median(rel)),
    }


ALPHA = 0.73  # per-position acceptance of the embedded pair (project estimate until calibration)
DESCRIPTION = (
    "PROVISIONAL, replaced by calibration (python -m ssdsim.calibrate). The project's embedded CPU pair: "
    "a ~12M-parameter Llama target (hidden 384, 6 layers) and a ~1.7M draft (hidden 192, 2 layers), "
    "vocab 4096, float32, one torch thread per process on its own core, gloo + shared memory link. "
    "Forward latencies MEASURED with Hugging Face LlamaForCausalLM (random init, DynamicCache, one "
    "thread; per point the least disturbed of several runs on a shared 2-core machine) and fitted as fixed + per token + "
    "attention + KV terms (studies/measure_cpu_forward.py); our own decoder will differ. "
    "ASSUMED: link 100 us per message + 0.2 ns/byte; acceptance 0.73 per position; coverage "
    "1 - c(F) = 0.4/F after a rejection (top-5 0.92), bonus beta 0.27 = 1 - alpha; fast speculator "
    "50 us + 20 us/seq with acceptance 0.3; host overhead 0.3 ms + 0.05 ms/seq per step."
)


def preset(fits: dict, source: dict) -> Profile:
    """The embedded-cpu profile from fitted forward latencies and the stated assumptions."""

    def fwd(name: str) -> ForwardLatency:
        f = fits[name]
        return ForwardLatency(
            fixed_s=f["fixed_s"], token_s=f["token_s"], attn_s=f["attn_s"], kv_s=f["kv_s"]
        )

    return Profile(
        name="embedded-cpu",
        target=fwd("target"),
        draft=fwd("draft"),
        link=LinkLatency(fixed_s=100e-6, per_byte_s=0.2e-9),
        chance=Chance(
            alpha=(ALPHA,),
            alpha_fast=(0.3,),
            coverage=Coverage(beta_reject=(0.4,), r=1.0, beta_bonus=1 - ALPHA),
        ),
        step_overhead_s=3e-4,
        seq_overhead_s=5e-5,
        fast_s=50e-6,
        fast_seq_s=20e-6,
        vocab_size=4096,
        dist_bytes=4,
        draft_kv_bytes_per_token=2 * 2 * 192 * 4,
        cache_memory_bytes=512 * 2**20,
        max_context_tokens=2048,
        description=DESCRIPTION,
        provenance={
            "models": {
                "target": "embedded Llama, hidden 384, 6 layers, vocab 4096 (~12.2M params)",
                "draft": "embedded Llama, hidden 192, 2 layers, vocab 4096 (~1.7M params)",
            },
            "devices": {
                "target": "1 CPU core, 1 torch thread",
                "draft": "1 CPU core, 1 torch thread",
            },
            "dtype": "float32",
            "measured": {
                "torch": source.get("torch"),
                "fits": fits,
                "script": "studies/measure_cpu_forward.py",
                "runs": len(source.get("merged_from", [None])),
                "seconds_by_b_n_c": {
                    m: [[*r[:3], r[3]] for r in source[m]["rows_b_n_c_cpu_s_wall_s"]]
                    for m in MODELS
                },
            },
            "provisional": True,
        },
    )


def measure(reps: int) -> dict:
    torch.set_num_threads(1)
    out: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    for name, shape in MODELS.items():
        model = build(shape)
        rows = []
        for b, n, c in itertools.product(GRID_B, GRID_N, GRID_C):
            cpu_s, wall_s = time_forward(model, b, n, c, reps)
            logging.info(
                "%s B=%d n=%d c=%d: cpu %.2f ms, wall min %.2f ms",
                name,
                b,
                n,
                c,
                cpu_s * 1e3,
                wall_s * 1e3,
            )
            rows.append((b, n, c, cpu_s, wall_s))
        out[name] = {
            "params": sum(p.numel() for p in model.parameters()),
            "fit": fit(rows),
            "rows_b_n_c_cpu_s_wall_s": [list(r) for r in rows],
        }
    return out


def merge(paths: list[str]) -> dict:
    """Refit saved measurements; with several files each point keeps its least disturbed time."""
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            runs.append(json.load(fh))
    out: dict = {"torch": runs[0].get("torch"), "merged_from": paths}
    for name in MODELS:
        best: dict[tuple[int, int, int], float] = {}
        for run in runs:
            for b, n, c, *times in run[name]["rows_b_n_c_cpu_s_wall_s"]:
                best[(b, n, c)] = min(best.get((b, n, c), float("inf")), *times)
        rows = [(*key, t, t) for key, t in sorted(best.items())]
        out[name] = {
            "params": runs[0][name]["params"],
            "fit": fit(rows),
            "rows_b_n_c_cpu_s_wall_s": rows,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument(
        "--from-json", nargs="+", help="refit saved measurements (several: minimum per point)"
    )
    ap.add_argument(
        "--write-preset", action="store_true", help="write ssdsim/presets/embedded-cpu.json"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    out = merge(args.from_json) if args.from_json else measure(args.reps)
    print(json.dumps(out, indent=1))
    if args.write_preset:
        path = preset({m: out[m]["fit"] for m in MODELS}, out).save(
            PRESETS_DIR / "embedded-cpu.json"
        )
        logging.info("wrote %s", path)


if __name__ == "__main__":
    main()
