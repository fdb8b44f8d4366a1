"""Single-token forward latency of target and draft, one torch thread, float32.

Each model first fills a KV cache with ``context_tokens`` tokens; then one-token forwards are
timed, alternating target and draft. Time is the thread's CPU time (one torch thread computes
on the calling thread), so time slices lost to other processes on a shared machine do not
count; cache and memory-bandwidth contention still does. Medians after a warm-up.

Three settings are measured, all with the executor's own decoder (``executor.model``) unless
named otherwise:
- ``latency_ratio``: as SSD runs the pair, each model in its own process with one thread pinned
  to its own core, both forwarding at the same time (each sees the other's cache and memory
  traffic, as in a real run);
- ``latency_ratio_one_process``: both in one process, forwards interleaved, as SD runs them
  (each forward finds the caches full of the other model's weights);
- ``latency_ratio_hf``: interleaved, with transformers' eager Llama classes, whose per-layer
  Python overhead weighs more on the small draft.
Imports torch and executor.model.
"""

from __future__ import annotations

import inspect
import multiprocessing as mp
import os
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


def _timed_in_process(
    model_dir: str, context: list[int], core: int | None, seconds: float, out: Any
) -> None:
    """Child process: one pinned thread, one-token forwards for ``seconds``; puts the median."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    step = _runtime_stepper(Path(model_dir), torch.tensor([context]))
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(5):  # warm-up
            step()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            times.append(step())
    out.put((model_dir, statistics.median(times)))


def two_process_latency(
    target_dir: Path, draft_dir: Path, context: torch.Tensor, seconds: float
) -> dict[str, float]:
    """Median one-token seconds of target and draft forwarding at once, one process each.

    The processes are pinned to the first two allowed cores when there are two or more.
    """
    cores = sorted(os.sched_getaffinity(0))
    pins = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    ids = context[0].tolist()
    procs = [
        ctx.Process(target=_timed_in_process, args=(str(d), ids, core, seconds, out))
        for d, core in ((target_dir, pins[0]), (draft_dir, pins[1]))
    ]
    for proc in procs:
        proc.start()
    medians = dict(out.get(timeout=seconds + 300) for _ in procs)
    for proc in procs:
        proc.join()
    target_s, draft_s = medians[str(target_dir)], medians[str(draft_dir)]
    return {
        "target_token_s": target_s,
        "draft_token_s": draft_s,
        "latency_ratio": target_s / draft_s,
    }


def forward_latency(
    target: torch.nn.Module,
    draft: torch.nn.Module,
    target_dir: Path,
    draft_dir: Path,
    context: torch.Tensor,
    reps: int,
) -> dict[str, float]:
    """Median one-token forward seconds and target/draft ratios in the three settings above."""
    both = two_process_latency(target_dir, draft_dir, context, seconds=max(2.0, reps * 0.02))
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
        **both,
        "target_token_s_one_process": ours["target"],
        "draft_token_s_one_process": ours["draft"],
        "latency_ratio_one_process": ours["target"] / ours["draft"],
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
