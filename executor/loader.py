"""Find and check a target/draft model pair before any weights are loaded.

``resolve_pair(spec)`` accepts a built pair's name (``embedded``, ``smoke``, or any pair under
``ssdsim.paths.zoo_dir()``), a pair directory holding ``target/`` and ``draft/``, or
``TARGET_DIR,DRAFT_DIR`` (local Hugging Face directories). It checks, in this order, that the
directories exist, each config.json is readable JSON, the architecture is supported (Llama and
Qwen3 families), the vocabulary sizes agree, the tokenizers agree, and the safetensors weights
are present; each failure raises ``PairError`` naming the file and the mismatch. Loading the
weights is the model code's job, not this module's.

Imports ssdsim.paths; transformers only inside ``load_tokenizer``; never torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ssdsim.paths import zoo_dir

log = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen3ForCausalLM": "qwen3"}
BUILD_HINTS = {
    "embedded": "python -m executor.zoo build",
    "smoke": "python -m executor.zoo build --size smoke",
}
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"


class PairError(ValueError):
    """A model pair cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ModelPair:
    """A checked target/draft pair: directories, the tokenizer to use, and the parsed configs."""

    name: str
    target_dir: Path
    draft_dir: Path
    tokenizer_dir: Path
    target_config: Mapping[str, Any]
    draft_config: Mapping[str, Any]

    @property
    def vocab_size(self) -> int:
        return int(self.target_config["vocab_size"])


def resolve_pair(spec: str) -> ModelPair:
    """The pair named or located by ``spec``, checked (see the module docstring)."""
    name, target_dir, draft_dir = _locate(spec)
    for role, d in (("target", target_dir), ("draft", draft_dir)):
        if not d.is_dir():
            raise PairError(
                f"{role} directory {d} does not exist"
                if not d.exists()
                else f"{role} path {d} is not a directory"
            )
    target_config = _read_config("target", target_dir)
    draft_config = _read_config("draft", draft_dir)
    _check_vocab(target_dir, target_config, draft_dir, draft_config)
    tokenizer_dir = _check_tokenizers(target_dir, draft_dir, int(target_config["vocab_size"]))
    _check_weights("target", target_dir)
    _check_weights("draft", draft_dir)
    return ModelPair(
        name,
        target_dir,
        draft_dir,
        tokenizer_dir,
        MappingProxyType(target_config),
        MappingProxyType(draft_config),
    )


def load_tokenizer(pair: ModelPair) -> Any:
    """The pair's tokenizer (a transformers tokenizer from ``pair.tokenizer_dir``)."""
    from transformers import AutoTokenizer  # slow import: only when a tokenizer is wanted

    return AutoTokenizer.from_pretrained(str(pair.tokenizer_dir))


def _locate(spec: str) -> tuple[str, Path, Path]:
    if not isinstance(spec, str) or not spec.strip():
        raise PairError(
            f"model pair spec {spec!r}: expected a pair name (embedded, smoke) or TARGET_DIR,DRAFT_DIR"
        )
    if "," in spec:
        parts = [p.strip() for p in spec.split(",")]
        if len(parts) != 2 or not all(parts):
            raise PairError(
                f"model pair spec {spec!r}: expected exactly two directories, TARGET_DIR,DRAFT_DIR"
            )
        target, draft = (Path(p).expanduser().resolve() for p in parts)
        return f"{target},{draft}", target, draft
    path = Path(spec).expanduser()
    if "/" in spec or path.is_dir():  # a pair directory holding target/ and draft/
        return path.resolve().name, path.resolve() / "target", path.resolve() / "draft"
    root = zoo_dir() / spec
    if not (root / "target").is_dir() or not (root / "draft").is_dir():
        hint = BUILD_HINTS.get(spec)
        how = (
            f"build it with `{hint}`"
            if hint
            else "expected a built pair name (embedded, smoke) or TARGET_DIR,DRAFT_DIR"
        )
        raise PairError(
            f"model pair {spec!r} is not built: no {root}/target and {root}/draft; {how}"
        )
    return spec, root / "target", root / "draft"


def _read_config(role: str, d: Path) -> dict[str, Any]:
    path = d / "config.json"
    if not path.is_file():
        raise PairError(f"{role} config {path}: missing (not a Hugging Face model directory?)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PairError(f"{role} config {path}: unreadable JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise PairError(
            f"{role} config {path}: expected a JSON object, got {type(config).__name__}"
        )
    archs = config.get("architectures") or []
    model_type = config.get("model_type")
    supported = (
        any(a in SUPPORTED_ARCHITECTURES for a in archs)
        or model_type in SUPPORTED_ARCHITECTURES.values()
    )
    if not supported:
        raise PairError(
            f"{role} config {path}: architecture {archs or None} (model_type {model_type!r}) is not supported; "
            f"expected {' or '.join(SUPPORTED_ARCHITECTURES)} (model_type "
            f"{' or '.join(SUPPORTED_ARCHITECTURES.values())})"
        )
    vocab = config.get("vocab_size")
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 1:
        raise PairError(f"{role} config {path}: vocab_size {vocab!r} is not a positive integer")
    return config


def _check_vocab(
    target_dir: Path, target: dict[str, Any], draft_dir: Path, draft: dict[str, Any]
) -> None:
    if draft["vocab_size"] != target["vocab_size"]:
        raise PairError(
            f"draft config {draft_dir / 'config.json'}: vocab_size {draft['vocab_size']} != target's "
            f"{target['vocab_size']} ({target_dir / 'config.json'})"
        )


def _tokenizer_file(d: Path) -> Path | None:
    for name in ("tokenizer.json", "vocab.json", "tokenizer.model"):
        if (d / name).is_file():
            return d / name
    return None


def _vocab_of(path: Path) -> dict[str, int] | str:
    """Token -> id of a tokenizer file (tokenizer.json incl. added tokens, vocab.json), else its hash."""
    if path.name == "tokenizer.model":  # sentencepiece: compare bytes
        return hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PairError(f"tokenizer {path}: unreadable JSON ({exc})") from exc
    if path.name == "vocab.json":
        return dict(data)
    model = data.get("model") or {}
    vocab = model.get("vocab") or {}
    if isinstance(vocab, list):  # unigram models list [piece, score] pairs
        vocab = {piece[0]: i for i, piece in enumerate(vocab)}
    vocab = dict(vocab)
    for tok in data.get("added_tokens") or []:
        vocab[tok["content"]] = tok["id"]
    return vocab


def _first_difference(target: dict[str, int], draft: dict[str, int]) -> str:
    t_by_id = {i: t for t, i in target.items()}
    d_by_id = {i: t for t, i in draft.items()}
    for i in sorted(set(t_by_id) | set(d_by_id)):
        if t_by_id.get(i) != d_by_id.get(i):
            return f"id {i} is {t_by_id.get(i)!r} in the target's and {d_by_id.get(i)!r} in the draft's"
    return "same ids, different tokens"


def _check_tokenizers(target_dir: Path, draft_dir: Path, vocab_size: int) -> Path:
    """The directory whose tokenizer to use; errors when missing, disagreeing or too large."""
    t_file, d_file = _tokenizer_file(target_dir), _tokenizer_file(draft_dir)
    if t_file is None and d_file is None:
        raise PairError(
            f"no tokenizer in target directory {target_dir} nor in draft directory {draft_dir} "
            "(expected tokenizer.json, vocab.json or tokenizer.model)"
        )
    if t_file is None or d_file is None:
        present = d_file or t_file
        missing = target_dir if t_file is None else draft_dir
        log.warning("no tokenizer in %s; using %s for both models", missing, present)
        _check_tokenizer_size(present, _vocab_of(present), vocab_size)
        return present.parent
    t_vocab, d_vocab = _vocab_of(t_file), _vocab_of(d_file)
    if t_vocab != d_vocab:
        if isinstance(t_vocab, dict) and isinstance(d_vocab, dict):
            detail = (
                f"{len(t_vocab)} vs {len(d_vocab)} tokens; {_first_difference(t_vocab, d_vocab)}"
            )
        else:
            detail = "different files"
        raise PairError(f"tokenizers disagree: target {t_file} vs draft {d_file}: {detail}")
    _check_tokenizer_size(t_file, t_vocab, vocab_size)
    return target_dir


def _check_tokenizer_size(path: Path, vocab: dict[str, int] | str, vocab_size: int) -> None:
    if isinstance(vocab, dict) and vocab and max(vocab.values()) >= vocab_size:
        raise PairError(
            f"tokenizer {path}: token id {max(vocab.values())} does not fit the models' vocab_size {vocab_size}"
        )


def _check_weights(role: str, d: Path) -> None:
    if (d / WEIGHTS_FILE).is_file():
        return
    index = d / WEIGHTS_INDEX
    if not index.is_file():
        raise PairError(f"{role} weights: no {WEIGHTS_FILE} or {WEIGHTS_INDEX} in {d}")
    try:
        shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    except (
        OSError,
        UnicodeDecodeError,
        json.JSONDecodeError,
        KeyError,
        AttributeError,
        TypeError,
    ) as exc:
        raise PairError(
            f"{role} weights index {index}: unreadable or without a weight_map ({exc})"
        ) from exc
    missing = sorted(s for s in shards if not (d / s).is_file())
    if missing:
        raise PairError(f"{role} weights index {index}: missing shard file(s) {', '.join(missing)}")
