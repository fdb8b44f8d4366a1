"""Prompt sets cut from held-out files, written where ``ssdsim.workload`` finds them by name.

A prompt starts at a ``def``/``class`` line and ends at the end of a line (without its newline,
so the next token is the natural newline-plus-indent token), holding ``min_tokens`` to
``max_tokens`` tokens. Files are visited in a fixed hashed order, one prompt per file while
files last. Each JSON line is ``{"prompt", "prompt_ids", "pair", "source"}``. Imports ssdsim.paths.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from executor.zoo.corpus import SourceFile
from executor.zoo.recipe import PromptSet
from executor.zoo.tokenizer import encode
from ssdsim.paths import prompts_dir

START = re.compile(r"^\s*(async\s+def|def|class)\s")
REFERENCE_TOKENS = 256  # real text kept after each prompt, for the loop baseline


@dataclass(frozen=True)
class Prompt:
    text: str
    ids: tuple[int, ...]
    source: str
    reference_ids: tuple[int, ...]  # the real tokens that follow the prompt in its file


def _cut(
    lines: list[str], start: int, want: int, min_tokens: int, tok: PreTrainedTokenizerFast
) -> tuple[str, list[int], int] | None:
    """The longest run of whole lines from ``start`` with at most ``want`` tokens (>= min_tokens)."""
    best = None
    for end in range(start + 1, len(lines)):  # keep at least one line after the prompt
        text = "".join(lines[start:end]).rstrip("\n")
        ids = encode(tok, text)
        if len(ids) > want:
            break
        if len(ids) >= min_tokens and not lines[end - 1].isspace():
            best = (text, ids, end)
    return best


def _from_file(
    f: SourceFile, spec: PromptSet, rng: random.Random, tok: PreTrainedTokenizerFast
) -> Prompt | None:
    lines = f.text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if START.match(line)]
    rng.shuffle(starts)
    want = rng.randint(spec.min_tokens, spec.max_tokens)
    for start in starts[:8]:
        cut = _cut(lines, start, want, spec.min_tokens, tok)
        if cut is None:
            continue
        text, ids, end = cut
        rest = "".join(lines[end - 1 :])[len(lines[end - 1].rstrip("\n")) :]
        ref = encode(tok, rest)[:REFERENCE_TOKENS]
        return Prompt(text, tuple(ids), f.name, tuple(ref))
    return None


def make_prompts(
    files: Sequence[SourceFile], spec: PromptSet, tok: PreTrainedTokenizerFast
) -> list[Prompt]:
    """``spec.count`` prompts, deterministic for the files, the spec and the tokenizer."""
    order = sorted(files, key=lambda f: hashlib.sha1(f"{spec.name}:{f.name}".encode()).hexdigest())
    rng = random.Random(spec.name)
    out: list[Prompt] = []
    for _round in range(4):  # more rounds when there are fewer files than prompts
        for f in order:
            p = _from_file(f, spec, rng, tok)
            if p is not None and p not in out:
                out.append(p)
            if len(out) == spec.count:
                return out
    raise ValueError(
        f"prompt set {spec.name!r}: found only {len(out)} of {spec.count} prompts of "
        f"{spec.min_tokens}..{spec.max_tokens} tokens in {len(files)} held-out files"
    )


def write_prompt_set(name: str, prompts: Sequence[Prompt], pair: str) -> Path:
    """Write ``<cache>/prompts/<name>.jsonl`` atomically and return its path."""
    path = prompts_dir() / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for p in prompts:
            rec = {"prompt": p.text, "prompt_ids": list(p.ids), "pair": pair, "source": p.source}
            fh.write(json.dumps(rec) + "\n")
    tmp.replace(path)
    return path
