"""Model configuration: the subset of a Hugging Face ``config.json`` our decoder needs.

Supports the Llama family (``model_type`` ``llama``: GQA, Llama-3 rope scaling, tied or untied
embeddings) and the Qwen3 family (``qwen3``: per-head q/k RMSNorm, explicit ``head_dim``).
Anything else a config asks for that the decoder does not implement (sliding windows, other
rope scalings, biases on the MLP) is rejected with a ``ConfigError`` naming the file and field,
before any weight is read. Imports only the standard library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAMILIES = ("llama", "qwen3")


class ConfigError(ValueError):
    """A model config is missing a field, has a bad value or asks for an unsupported feature."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one decoder-only model (Llama or Qwen3 family).

    rope_scaling: None or the Llama-3 parameters (factor, low_freq_factor, high_freq_factor,
    original_max_position_embeddings). eos_token_ids: every id that ends a sequence.
    """

    family: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    tie_word_embeddings: bool
    qk_norm: bool
    attention_bias: bool = False
    rope_scaling: tuple[tuple[str, float], ...] | None = None
    eos_token_ids: tuple[int, ...] = ()
    bos_token_id: int | None = None

    @property
    def num_groups(self) -> int:
        """Query heads per key/value head (GQA group size)."""
        return self.num_heads // self.num_kv_heads

    @property
    def rope_scaling_dict(self) -> dict[str, float] | None:
        return dict(self.rope_scaling) if self.rope_scaling is not None else None


def _need(raw: dict[str, Any], key: str, where: str, kind: type = int) -> Any:
    if key not in raw or raw[key] is None:
        raise ConfigError(f"{where}: missing field {key!r}")
    value = raw[key]
    ok = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
    if isinstance(value, bool) or not ok:
        raise ConfigError(f"{where}: field {key!r} = {value!r}, expected {kind.__name__}")
    if kind is int and value < 1:
        raise ConfigError(f"{where}: field {key!r} = {value!r}, expected an integer >= 1")
    return value


def _rope(raw: dict[str, Any], where: str) -> tuple[float, tuple[tuple[str, float], ...] | None]:
    """rope_theta and Llama-3 scaling, from the new (``rope_parameters``) or old (``rope_scaling``) layout."""
    params = dict(raw.get("rope_parameters") or {})
    old = raw.get("rope_scaling") or {}
    if not isinstance(params, dict) or not isinstance(old, dict):
        raise ConfigError(f"{where}: rope_parameters / rope_scaling must be JSON objects")
    params = {**old, **params}
    theta = params.get("rope_theta", raw.get("rope_theta", 10000.0))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind == "default":
        return float(theta), None
    if kind != "llama3":
        raise ConfigError(
            f"{where}: rope type {kind!r} is not supported (expected 'default' or 'llama3')"
        )
    keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
    missing = [k for k in keys if k not in params]
    if missing:
        raise ConfigError(f"{where}: llama3 rope scaling lacks {missing}")
    return float(theta), tuple((k, float(params[k])) for k in keys)


def _eos(raw: dict[str, Any]) -> tuple[int, ...]:
    eos = raw.get("eos_token_id")
    if eos is None:
        return ()
    return tuple(eos) if isinstance(eos, list) else (int(eos),)


def _check_supported(raw: dict[str, Any], family: str, where: str) -> None:
    if raw.get("hidden_act", "silu") != "silu":
        raise ConfigError(
            f"{where}: hidden_act {raw.get('hidden_act')!r} not supported (expected 'silu')"
        )
    if raw.get("mlp_bias"):
        raise ConfigError(f"{where}: mlp_bias = true is not supported")
    if family == "qwen3" and raw.get("use_sliding_window"):
        raise ConfigError(f"{where}: use_sliding_window = true is not supported")
    if raw.get("pretraining_tp", 1) != 1:
        raise ConfigError(f"{where}: pretraining_tp != 1 is not supported")


def parse_config(raw: dict[str, Any], where: str = "config.json") -> ModelConfig:
    """Build a ModelConfig from a parsed ``config.json``; ``where`` names the source in errors."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    family = raw.get("model_type")
    if family not in FAMILIES:
        raise ConfigError(
            f"{where}: model_type {family!r} is not supported (expected one of {FAMILIES})"
        )
    _check_supported(raw, family, where)
    hidden = _need(raw, "hidden_size", where)
    heads = _need(raw, "num_attention_heads", where)
    kv_heads = raw.get("num_key_value_heads") or heads
    if heads % kv_heads:
        raise ConfigError(
            f"{where}: num_attention_heads {heads} not divisible by num_key_value_heads {kv_heads}"
        )
    head_dim = raw.get("head_dim") or hidden // heads
    theta, scaling = _rope(raw, where)
    return ModelConfig(
        family=family,
        vocab_size=_need(raw, "vocab_size", where),
        hidden_size=hidden,
        intermediate_size=_need(raw, "intermediate_size", where),
        num_layers=_need(raw, "num_hidden_layers", where),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        rms_norm_eps=float(raw.get("rms_norm_eps", 1e-6)),
        rope_theta=theta,
        max_position_embeddings=int(raw.get("max_position_embeddings", 2048)),
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),
        qk_norm=family == "qwen3",
        attention_bias=bool(raw.get("attention_bias", False)),
        rope_scaling=scaling,
        eos_token_ids=_eos(raw),
        bos_token_id=raw.get("bos_token_id"),
    )


def load_config(model_dir: str | Path) -> ModelConfig:
    """Read and parse ``<model_dir>/config.json``."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{path}: no config.json in model directory {str(model_dir)!r}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg})") from exc
    return parse_config(raw, str(path))
