"""Single-token forward latency of target and draft, one torch thread, float32.

Each model first fills a KV cache with ``context_tokens`` tokens; then one-token forwards are
timed, alternating target and draft so that load from other processes hits both alike, and
the cache is cropped back after each call. Medians after a warm-up. The models are transformers'
Llama classes, so per-layer Python overhead is included. Imports torch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def _stepper(model: torch.nn.Module, context: torch.Tensor) -> Callable[[], float]:
    with torch.no_grad():
        cache = model(input_ids=context, use_cache=True).past_key_values
    token = context[:, -1:]

    def step() -> float:
        with torch.no_grad():
            t0 = time.perf_counter()
            model(input_ids=token, cache=cache, use_cache=True)
            elapsed = time.perf_counter() - t0
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
