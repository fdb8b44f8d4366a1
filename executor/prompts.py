"""Prompts as token ids for a model pair, from a prompt-set name or a JSON-lines file.

Records come from ``ssdsim.workload.read_prompt_records`` (``{"prompt": text}`` and/or
``{"prompt_ids": [...]}``, optionally ``"pair"``: the pair whose tokenizer made the ids). Ids
are used as they are when the record names no pair or this pair; otherwise the text is
tokenized again with this pair's tokenizer (without special tokens, as the paper's benchmarks
do). Every id is checked against the vocabulary. Errors are ``PromptError`` naming the file and
record. Imports the ssdsim workload contract only (the tokenizer is passed in).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ssdsim.workload import read_prompt_records, resolve_prompt_file


class PromptError(ValueError):
    """A prompt set cannot be turned into token ids for this pair."""


def load_prompt_ids(
    prompts: str,
    *,
    pair_name: str,
    vocab_size: int,
    tokenizer: Callable[[], Any] | None = None,
    num_prompts: int | None = None,
) -> list[list[int]]:
    """The first ``num_prompts`` prompts of the set as id lists (all of them when None).

    tokenizer: a function returning the pair's tokenizer (called at most once, only when some
    record must be tokenized).
    """
    path = resolve_prompt_file(prompts)
    records = read_prompt_records(prompts)
    if num_prompts is not None:
        if num_prompts > len(records):
            raise PromptError(
                f"{path}: --num-prompts {num_prompts} but the set holds {len(records)} prompts"
            )
        records = records[:num_prompts]
    tok = None
    out: list[list[int]] = []
    for n, rec in enumerate(records, 1):
        ids = rec.get("prompt_ids")
        if ids is None or rec.get("pair", pair_name) != pair_name:
            if "prompt" not in rec:
                raise PromptError(
                    f"{path}: record {n} has ids for pair {rec.get('pair')!r}, not {pair_name!r}, and no text to re-tokenize"
                )
            if tokenizer is None:
                raise PromptError(
                    f"{path}: record {n} needs tokenizing but pair {pair_name!r} has no tokenizer"
                )
            tok = tok or tokenizer()
            ids = list(tok.encode(rec["prompt"], add_special_tokens=False))
            if not ids:
                raise PromptError(f"{path}: record {n} tokenizes to no tokens")
        bad = [i for i in ids if i >= vocab_size]
        if bad:
            raise PromptError(
                f"{path}: record {n} has token ids {bad[:5]} >= the vocabulary size {vocab_size}"
            )
        out.append(list(ids))
    return out
