"""Single-token forward latency of target and draft, one torch thread, float32.

Each model first fills a KV cache with ``context_tokens`` tokens; then one-token forwards are
timed, alternating target and draft, and the cache is cropped back after each call. Time is the
thread's CPU time (one torch thread computes on the calling thread), so time slices lost to
other processes on a shared machine do not count; cache and memory-bandwidth contention still
does. Medians after a warm-up. The models are transformers' eager Llama classes, so their
per-layer Python overhead is included: a leaner runtime gets a higher ratio. Imports torch.
"""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Callable
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


def forward_latency(
    target: torch.nn.Module, draft: torch.nn.Module, context: torch.Tensor, reps: int
) -> dict[str, float]:
    """Median one-token forward seconds of each model and their ratio (target / draft)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        steps = {"target": _stepper(target, context), "draft": _stepper(draft, context)}
        times: dict[str, list[float]] = {"target": [], "draft": []}
        warmup = max(2, reps // 10)
        for i in range(reps + warmup):
            for name, step in steps.items():
                elapsed = step()
                if i >= warmup:
                    times[name].append(elapsed)
    finally:
        torch.set_num_threads(threads)
    target_s = statistics.median(times["target"])
    draft_s = statistics.median(times["draft"])
    return {
        "target_token_s": target_s,
        "draft_token_s": draft_s,
        "latency_ratio": target_s / draft_s,
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
