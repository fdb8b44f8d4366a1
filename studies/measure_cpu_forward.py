"""Measure forward latencies of the embedded CPU model pair and fit the Profile's CPU model.

Builds randomly initialised Llama models shaped like the project's embedded pair (target: hidden
384, 6 layers; draft: hidden 192, 2 layers; vocab 4096; float32) with Hugging Face transformers,
runs them with one torch thread, times forward passes of B sequences x n new tokens over a
KV cache of c tokens, and fits ``t = fixed_s + token_s*B*n + attn_s*B*n*c + kv_s*B*c`` by
non-negative least squares. Prints one JSON object (the fitted ForwardLatency fields per model and
the raw medians). Used to set ``ssdsim/presets/embedded-cpu.json``; calibration replaces it.

    nice -n 10 python studies/measure_cpu_forward.py [--reps 15]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time

import numpy as np
import torch
from scipy.optimize import nnls
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

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
GRID_B = (1, 4, 16, 32)
GRID_N = (1, 8, 32)
GRID_C = (64, 512)


def build(shape: dict) -> LlamaForCausalLM:
    cfg = LlamaConfig(
        vocab_size=4096, max_position_embeddings=4096, tie_word_embeddings=True, **shape
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval()


@torch.no_grad()
def time_forward(model: LlamaForCausalLM, b: int, n: int, c: int, reps: int) -> float:
    """Median seconds of one forward of b x n tokens after a prefilled cache of c tokens."""
    ids = torch.randint(0, 4096, (b, c))
    cache = DynamicCache()
    model(input_ids=ids, past_key_values=cache, use_cache=True)
    new = torch.randint(0, 4096, (b, n))
    pos = torch.arange(c, c + n).expand(b, n)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        model(input_ids=new, position_ids=pos, past_key_values=cache, use_cache=True)
        times.append(time.perf_counter() - t0)
        cache.crop(-n)  # back to c cached tokens
    return statistics.median(times)


def fit(rows: list[tuple[int, int, int, float]]) -> dict:
    x = np.array([[1.0, b * n, b * n * c, b * c] for b, n, c, _ in rows])
    y = np.array([t for *_, t in rows])
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)
    out: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    for name, shape in MODELS.items():
        model = build(shape)
        params = sum(p.numel() for p in model.parameters())
        rows = []
        for b in GRID_B:
            for n in GRID_N:
                for c in GRID_C:
                    t = time_forward(model, b, n, c, args.reps)
                    logging.info("%s B=%d n=%d c=%d: %.3f ms", name, b, n, c, t * 1e3)
                    rows.append((b, n, c, t))
        out[name] = {"params": params, "fit": fit(rows), "median_s": [list(r) for r in rows]}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
