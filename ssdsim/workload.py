"""Workload: what is decoded (prompts or prompt lengths, output length, batch size, temperature).

Shared by the simulator, the optimizer and the executor. Pure standard library. A prompt set is
named (``code64``: resolved to ``<cache>/prompts/code64.jsonl``, see ``ssdsim.paths``) or given
as a JSON-lines file with one ``{"prompt": "text"}`` or ``{"prompt_ids": [ids]}`` per line.
The simulator needs only prompt lengths: from the set when ids are present, otherwise from
``prompt_len_tokens``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssdsim._schema import (
    SchemaError,
    check_float,
    check_int,
    check_schema_version,
    fail,
    from_file,
    strict_kwargs,
    to_jsonable,
    write_json,
)
from ssdsim.paths import prompts_dir

WORKLOAD_SCHEMA_VERSION = 1


def _as_range(owner: str, field: str, value: Any) -> tuple[int, int]:
    """An int n means (n, n); a pair (lo, hi) means uniform integers in [lo, hi]."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise fail(owner, field, value, "an integer >= 1 or a pair [min, max]")
    lo = check_int(owner, f"{field}[0]", value[0], 1)
    hi = check_int(owner, f"{field}[1]", value[1], 1)
    if hi < lo:
        raise fail(owner, field, list(value), "a pair [min, max] with min <= max")
    return (lo, hi)


@dataclass(frozen=True)
class Workload:
    """What to decode.

    Fields:
        batch_size: sequences decoded together (B).
        temperature: target sampling temperature (0 = greedy).
        output_len_tokens: tokens generated per sequence, n or [min, max] (uniform per sequence).
        prompt_len_tokens: prompt length when no prompt set gives it, n or [min, max].
        prompts: a prompt-set name or a JSON-lines path (None: synthetic lengths only).
        num_prompts: sequences in the whole run, decoded in batches of ``batch_size``
            (None: one batch).
        seed: seed of every random stream of a run.
        ignore_eos: keep generating past an end-of-sequence token (as the paper's benchmarks do).
        name: label used in study names and reports.
    """

    batch_size: int = 1
    temperature: float = 0.0
    output_len_tokens: tuple[int, int] = (256, 256)
    prompt_len_tokens: tuple[int, int] = (128, 128)
    prompts: str | None = None
    num_prompts: int | None = None
    seed: int = 0
    ignore_eos: bool = True
    name: str = "default"
    schema_version: int = WORKLOAD_SCHEMA_VERSION

    def __post_init__(self) -> None:
        o = "Workload"
        check_schema_version(o, self.schema_version, WORKLOAD_SCHEMA_VERSION)
        check_int(o, "batch_size", self.batch_size, 1)
        check_float(o, "temperature", self.temperature, 0.0)
        object.__setattr__(
            self, "output_len_tokens", _as_range(o, "output_len_tokens", self.output_len_tokens)
        )
        object.__setattr__(
            self, "prompt_len_tokens", _as_range(o, "prompt_len_tokens", self.prompt_len_tokens)
        )
        if self.prompts is not None and (not isinstance(self.prompts, str) or not self.prompts):
            raise fail(o, "prompts", self.prompts, "a prompt-set name or a JSON-lines file path")
        if self.num_prompts is not None:
            check_int(o, "num_prompts", self.num_prompts, 1)
        check_int(o, "seed", self.seed, 0)
        if not isinstance(self.ignore_eos, bool):
            raise fail(o, "ignore_eos", self.ignore_eos, "true or false")
        if not isinstance(self.name, str) or not self.name:
            raise fail(o, "name", self.name, "a non-empty string")

    @property
    def total_prompts(self) -> int:
        return self.num_prompts if self.num_prompts is not None else self.batch_size

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def from_dict(cls, data: Any) -> Workload:
        kw = strict_kwargs(cls, data)
        return cls(**kw)

    @classmethod
    def load(cls, path: str | Path) -> Workload:
        return from_file(cls, path)

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())


def resolve_prompt_file(prompts: str) -> Path:
    """A prompt-set name or path to an existing JSON-lines file, or a clear error."""
    p = Path(prompts).expanduser()
    if p.suffix == ".jsonl" or p.exists() or "/" in prompts:
        if not p.is_file():
            raise SchemaError(f"prompt file {str(p)!r} does not exist")
        return p
    named = prompts_dir() / f"{prompts}.jsonl"
    if not named.is_file():
        known = (
            sorted(x.stem for x in prompts_dir().glob("*.jsonl")) if prompts_dir().is_dir() else []
        )
        hint = (
            f"known sets: {', '.join(known)}"
            if known
            else "build them with `python -m executor.zoo build`"
        )
        raise SchemaError(f"prompt set {prompts!r} not found at {str(named)!r} ({hint})")
    return named


def read_prompt_records(prompts: str) -> list[dict[str, Any]]:
    """The records of a prompt set, each with ``prompt`` (text) and/or ``prompt_ids`` (token ids)."""
    path = resolve_prompt_file(prompts)
    out: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SchemaError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
            if not isinstance(rec, dict) or not ({"prompt", "prompt_ids"} & set(rec)):
                raise SchemaError(
                    f"{path}:{n}: expected an object with 'prompt' or 'prompt_ids', got {line.strip()[:80]!r}"
                )
            ids = rec.get("prompt_ids")
            if ids is not None and (
                not isinstance(ids, list)
                or not ids
                or not all(isinstance(i, int) and i >= 0 for i in ids)
            ):
                raise SchemaError(
                    f"{path}:{n}: 'prompt_ids' must be a non-empty list of non-negative integers"
                )
            if "prompt" in rec and not isinstance(rec["prompt"], str):
                raise SchemaError(f"{path}:{n}: 'prompt' must be a string")
            out.append(rec)
    if not out:
        raise SchemaError(f"prompt file {str(path)!r} holds no prompts")
    return out


def prompt_lengths(workload: Workload) -> list[int] | None:
    """Prompt lengths in tokens from the workload's prompt set, or None when it has no token ids."""
    if workload.prompts is None:
        return None
    recs = read_prompt_records(workload.prompts)
    if any("prompt_ids" not in r for r in recs):
        return None
    return [len(r["prompt_ids"]) for r in recs]


def paper_workload(num_prompts: int = 32, seed: int = 0) -> Workload:
    """The paper's benchmark shape: B=1, greedy, 512 output tokens, EOS ignored.

    The paper decodes the first 128 prompts of HumanEval, Alpaca, GSM8K and UltraFeedback
    untruncated; their Llama-3 token lengths are stood in for by uniform lengths in [16, 256]
    (their context changes the 70B step time by well under 1%).
    """
    return Workload(
        batch_size=1,
        temperature=0.0,
        output_len_tokens=512,
        prompt_len_tokens=(16, 256),
        num_prompts=num_prompts,
        seed=seed,
        name="paper-b1-greedy",
    )
