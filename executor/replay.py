"""Text replay: what the draft and the fast speculator propose at every position of a greedy text.

    python -m executor.replay --pair embedded --prompts out/loop21/prompts_valid.jsonl \\
        --num-prompts 12 --max-new-tokens 64 -o out/loop21/replay_valid.json

At T = 0 every mode emits the target's greedy text (losslessness), and every proposal the
target verifies is a deterministic function of that text: a draft row starting at position q
proposes the draft's greedy tokens given the text up to q (it is conditioned on its own earlier
proposals, but only accepted ones matter, and they are the text); the fast speculator's
proposals are a function of the text so far (``executor.ssd.fast``); the next request's cache
key is the bonus token's rank among the draft's candidates at the bonus position, with the
rejected proposal excluded (``kernels.fork.candidate_rank``). So the greedy text, the draft's
ranking of candidates at each position and the n-gram proposals at each position determine
every accepted length and every hit of every T = 0 policy; only timing (the doorbell's tree
depth) is left to the simulator (``ssdsim.replay`` replays these files).

This builds them: the target decodes each prompt greedily (AR, batch 1) for ``max_new_tokens``
plus ``--max-k`` + 1 tokens (so a row starting near the end can still be judged), one draft
forward over prompt + text gives the draft's top ``--depth`` candidates at every text position
(ties by token id, as ``candidate_rank`` orders them), and the n-gram speculator is asked for
``--max-k`` proposals at every position. Writes one JSON file (``ssdsim.replay`` documents its
fields). Imports torch and the executor.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from executor.engines.ar import AREngine
from executor.engines.common import Sampling, generate
from executor.loader import PairError, load_tokenizer, resolve_pair
from executor.model.decoder import Decoder
from executor.prompts import PromptError, load_prompt_ids
from executor.ssd.fast import NgramSpeculator
from ssdsim.replay import REPLAY_SCHEMA_VERSION

log = logging.getLogger(__name__)


def draft_candidates(
    draft: Decoder, prompt: Sequence[int], text: Sequence[int], depth: int
) -> list[list[int]]:
    """The draft's top ``depth`` token ids at each text position (the distribution that predicts
    text[q] given prompt + text[:q]), best first, ties by token id."""
    tokens = torch.tensor([list(prompt) + list(text)], dtype=torch.long, device=draft.device)
    n = tokens.shape[1]
    cache = draft.new_cache(1, n + 1)
    start = torch.zeros(1, dtype=torch.long, device=draft.device)
    logits = draft.forward(tokens, start, cache)[0, len(prompt) - 1 : n - 1]  # [len(text), V]
    order = torch.sort(logits, dim=-1, descending=True, stable=True).indices
    return order[:, :depth].tolist()


def fast_proposals(prompt: Sequence[int], text: Sequence[int], max_k: int) -> list[list[int]]:
    """The n-gram speculator's proposals (up to ``max_k``; empty: no match) for a row starting
    at each text position."""
    spec = NgramSpeculator(max_k)
    spec.reset([list(prompt)])
    out = []
    for tok in text:
        out.append(spec.propose_row(0))
        spec.extend(0, [tok])
    return out


def build_replay(
    pair_spec: str,
    prompts: str,
    *,
    num_prompts: int | None,
    max_new_tokens: int,
    max_k: int = 16,
    depth: int = 64,
    threads: int = 1,
) -> dict[str, Any]:
    """The replay of a prompt set's greedy texts (see the module docstring)."""
    torch.set_num_threads(threads)
    pair = resolve_pair(pair_spec)
    ids = load_prompt_ids(
        prompts,
        pair_name=pair.name,
        vocab_size=pair.vocab_size,
        tokenizer=lambda: load_tokenizer(pair),
        num_prompts=num_prompts,
    )
    length = max_new_tokens + max_k + 1
    t0 = time.perf_counter()
    target = Decoder.from_dir(pair.target_dir)
    texts = generate(
        AREngine(target, Sampling()),
        ids,
        batch_size=1,
        max_new_tokens=length,
        sampling=Sampling(),
        ignore_eos=True,
    ).outputs
    del target
    draft = Decoder.from_dir(pair.draft_dir)
    sequences = []
    with torch.inference_mode():
        for prompt, text in tqdm(list(zip(ids, texts, strict=True)), desc="replay", unit="seq"):
            sequences.append(
                {
                    "prompt_len": len(prompt),
                    "text": list(text),
                    "draft_top": draft_candidates(draft, prompt, text, depth),
                    "fast": fast_proposals(prompt, text, max_k),
                }
            )
    log.info(
        "replay of %d sequences x %d tokens in %.1f s", len(ids), length, time.perf_counter() - t0
    )
    return {
        "kind": "text_replay",
        "pair": pair.name,
        "target": str(pair.target_dir),
        "draft": str(pair.draft_dir),
        "prompts": str(prompts),
        "num_prompts": len(ids),
        "max_new_tokens": max_new_tokens,
        "max_k": max_k,
        "depth": depth,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sequences": sequences,
        "schema_version": REPLAY_SCHEMA_VERSION,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pair", required=True, help="model pair (name or folder)")
    ap.add_argument("--prompts", required=True, help="prompt set name or JSON-lines file")
    ap.add_argument("--num-prompts", type=int, help="first N prompts (default: all)")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--max-k", type=int, default=16, help="longest lookahead replayed (default 16)")
    ap.add_argument("--depth", type=int, default=64, help="draft candidates kept per position")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--out", type=Path, required=True, help="replay JSON to write")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("max_new_tokens", "max_k", "depth", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} {getattr(args, name)}: expected an integer >= 1")
    if args.num_prompts is not None and args.num_prompts < 1:
        ap.error(f"--num-prompts {args.num_prompts}: expected an integer >= 1")
    try:
        data = build_replay(
            args.pair,
            args.prompts,
            num_prompts=args.num_prompts,
            max_new_tokens=args.max_new_tokens,
            max_k=args.max_k,
            depth=args.depth,
            threads=args.threads,
        )
    except (PairError, PromptError, FileNotFoundError) as exc:
        print(f"executor.replay: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
