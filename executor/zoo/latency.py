"""Single-token forward latency of target and draft, one torch thread, float32.

Each model first fills a KV cache with ``context_tokens`` tokens; then one-token forwards are
timed, alternating target and draft. Time is the thread's CPU time (one torch thread computes
on the calling thread), so time slices lost to other processes on a shared machine do not
count; cache and memory-bandwidth contention still does. Medians after a warm-up.

Two runtimes are measured: the executor's own decoder (``executor.model``, what decoding runs:
``latency_ratio``) and transformers' eager Llama classes (``latency_ratio_hf``), whose
per-layer Python overhead weighs more on the small draft. Imports torch and executor.model.
"""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def _cache_kwarg(model: torch.nn.Module) -> str:
    """transformers >= 5 names the KV cache argument ``cache``; earlier versions ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _stepper(model: torch.nn.Module, context: torch.Tensor) -> Callable[[], float]:
    name = _cache_kwarg(model)
    with torch.no_grad():
        out = model(input_ids=context, use_cache=True)
    cache = getattr(out, name)
    token = context[:, -1:]

    def step() -> float:
        with torch.no_grad():
            t0 = time.thread_time()
            model(input_ids=token, use_cache=True, **{name: cache})
            elapsed = time.thread_time() - t0
        cache.crop(-1)
        return elapsed

    return step


def _runtime_stepper(model_dir: Path, context: torch.Tensor) -> Callable[[], float]:
    """One-token forwards of the executor's decoder, rewriting the same position each time."""
    from executor.model.decoder import Decoder  # the runtime the executor decodes with

    decoder = Decoder.from_dir(model_dir)
    n = context.shape[1]
    cache = decoder.new_cache(1, n + 1)
    decoder.forward(context, torch.zeros(1, dtype=torch.long), cache)
    token, start = context[:, -1:], torch.tensor([n])

    def step() -> float:
        t0 = time.thread_time()
        decoder.forward(token, start, cache, kv_len=n + 1, logits_at=0)
        return time.thread_time() - t0

    return step


def _median_times(steps: dict[str, Callable[[], float]], reps: int) -> dict[str, float]:
    """Median seconds per step of each stepper, interleaved, after a warm-up, one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {name: [] for name in steps}
    try:
        with torch.inference_mode():
            warmup = max(2, reps // 10)
            for i in range(reps + warmup):
                for name, step in steps.items():
                    elapsed = step()
                    if i >= warmup:
                        times[name].append(elapsed)
    finally:
        torch.set_num_threads(threads)
    return {name: statistics.median(t) for name, t in times.items()}


def forward_latency(
    target: torch.nn.Module,
    draft: torch.nn.Module,
    target_dir: Path,
    draft_dir: Path,
    context: torch.Tensor,
    reps: int,
) -> dict[str, float]:
    """Median one-token forward seconds and target/draft ratios, executor runtime and HF eager."""
    ours = _median_times(
        {
            "target": _runtime_stepper(target_dir, context),
            "draft": _runtime_stepper(draft_dir, context),
        },
        reps,
    )
    hf = _median_times(
        {"target": _stepper(target, context), "draft": _stepper(draft, context)}, reps
    )
    return {
        "target_token_s": ours["target"],
        "draft_token_s": ours["draft"],
        "latency_ratio": ours["target"] / ours["draft"],
        "target_token_s_hf": hf["target"],
        "draft_token_s_hf": hf["draft"],
        "latency_ratio_hf": hf["target"] / hf["draft"],
    }


def decode_macs(config: Any, context_tokens: int) -> int:
    """Multiply-adds of one single-token decode step at ``context_tokens`` of context.

    Per layer: q, k, v, o projections, the gated MLP, and attention over the context; then the
    vocabulary projection. Memory traffic is about 4 bytes per weight multiply-add in float32,
    so on a CPU this ratio is also roughly the ratio of bytes read per token.
    """
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    q_o = 2 * h * config.num_attention_heads * head_dim
    k_v = 2 * h * config.num_key_value_heads * head_dim
    attention = 2 * context_tokens * config.num_attention_heads * head_dim
    per_layer = q_o + k_v + 3 * h * inter + attention
    return layers * per_layer + h * config.vocab_size
