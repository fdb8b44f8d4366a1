"""Weights: read a Hugging Face safetensors checkpoint (single file or sharded index) into our layout.

Our layout fuses the q, k and v projections into one matrix and the gate and up projections into
another (one matmul each per layer instead of three and two), and stacks Qwen3's q/k norm weights
per head. Each RMSNorm's weight w is folded into the matrix W that follows it (W diag(w), so the
decoder normalises without a weight: one kernel less per norm); the lm_head therefore becomes
its own tensor even when the embeddings are tied. Folding happens in float32 before the cast to
the model dtype. Every tensor is checked against the config; a missing or misshapen tensor
raises a ``WeightsError`` naming the checkpoint file and the tensor. Imports torch and safetensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from executor.model.config import ModelConfig


class WeightsError(ValueError):
    """A checkpoint is missing, incomplete or does not match its config."""


@dataclass
class LayerWeights:
    """One decoder layer in our fused layout (see module docstring); norm weights are folded in."""

    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    o: torch.Tensor
    o_bias: torch.Tensor | None
    qk_norm: torch.Tensor | None
    gate_up: torch.Tensor
    down: torch.Tensor


@dataclass
class DecoderWeights:
    embed: torch.Tensor
    layers: list[LayerWeights]
    lm_head: torch.Tensor  # the final norm's weight folded in


def _tensor_files(model_dir: Path) -> dict[str, Path]:
    """Map tensor name -> safetensors file, from ``model.safetensors`` or the sharded index."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise WeightsError(f"{index}: expected a JSON object with a 'weight_map'") from exc
        files = {name: model_dir / fname for name, fname in weight_map.items()}
        for f in set(files.values()):
            if not f.is_file():
                raise WeightsError(f"{index}: shard {f.name!r} does not exist")
        return files
    single = model_dir / "model.safetensors"
    if not single.is_file():
        raise WeightsError(f"{model_dir}: no model.safetensors or model.safetensors.index.json")
    with safe_open(str(single), framework="pt") as fh:
        return {name: single for name in fh.keys()}


class _Reader:
    """Reads named tensors from their files (on the CPU, as float32), checking shapes."""

    def __init__(self, model_dir: Path) -> None:
        self.files = _tensor_files(model_dir)
        self._handles: dict[Path, object] = {}

    def has(self, name: str) -> bool:
        return name in self.files

    def get(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        if name not in self.files:
            raise WeightsError(
                f"checkpoint lacks tensor {name!r} (files: {sorted({p.name for p in self.files.values()})})"
            )
        path = self.files[name]
        if path not in self._handles:
            self._handles[path] = safe_open(str(path), framework="pt")
        t = self._handles[path].get_tensor(name)
        if tuple(t.shape) != shape:
            raise WeightsError(
                f"{path}: tensor {name!r} has shape {tuple(t.shape)}, expected {shape}"
            )
        return t.to(torch.float32)


def _layer(r: _Reader, c: ModelConfig, i: int) -> LayerWeights:
    p = f"model.layers.{i}."
    hd, h, kvh = c.head_dim, c.num_heads, c.num_kv_heads
    q = r.get(p + "self_attn.q_proj.weight", (h * hd, c.hidden_size))
    k = r.get(p + "self_attn.k_proj.weight", (kvh * hd, c.hidden_size))
    v = r.get(p + "self_attn.v_proj.weight", (kvh * hd, c.hidden_size))
    qkv_bias = o_bias = qk_norm = None
    if c.attention_bias:
        qkv_bias = torch.cat(
            [
                r.get(p + f"self_attn.{n}_proj.bias", (s * hd,))
                for n, s in (("q", h), ("k", kvh), ("v", kvh))
            ]
        )
        o_bias = r.get(p + "self_attn.o_proj.bias", (c.hidden_size,))
    if c.qk_norm:
        qn = r.get(p + "self_attn.q_norm.weight", (hd,))
        kn = r.get(p + "self_attn.k_norm.weight", (hd,))
        qk_norm = torch.cat((qn.expand(h, hd), kn.expand(kvh, hd)))
    gate = r.get(p + "mlp.gate_proj.weight", (c.intermediate_size, c.hidden_size))
    up = r.get(p + "mlp.up_proj.weight", (c.intermediate_size, c.hidden_size))
    attn_norm = r.get(p + "input_layernorm.weight", (c.hidden_size,))
    mlp_norm = r.get(p + "post_attention_layernorm.weight", (c.hidden_size,))
    return LayerWeights(
        qkv=torch.cat((q, k, v)) * attn_norm,
        qkv_bias=qkv_bias,
        o=r.get(p + "self_attn.o_proj.weight", (c.hidden_size, h * hd)),
        o_bias=o_bias,
        qk_norm=qk_norm,
        gate_up=torch.cat((gate, up)) * mlp_norm,
        down=r.get(p + "mlp.down_proj.weight", (c.hidden_size, c.intermediate_size)),
    )


def _cast(t: torch.Tensor | None, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
    return None if t is None else t.to(device=device, dtype=dtype).contiguous()


def load_weights(
    model_dir: str | Path,
    config: ModelConfig,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> DecoderWeights:
    """Read every tensor the decoder needs from ``model_dir`` into our fused layout."""
    r = _Reader(Path(model_dir))
    dev = torch.device(device)
    embed = r.get("model.embed_tokens.weight", (config.vocab_size, config.hidden_size))
    if r.has("lm_head.weight") and not config.tie_word_embeddings:
        lm_head = r.get("lm_head.weight", (config.vocab_size, config.hidden_size))
    elif config.tie_word_embeddings:
        lm_head = embed
    else:
        raise WeightsError(f"{model_dir}: no 'lm_head.weight' and tie_word_embeddings is false")
    norm = r.get("model.norm.weight", (config.hidden_size,))
    layers = [_layer(r, config, i) for i in range(config.num_layers)]
    return DecoderWeights(
        embed=_cast(embed, dev, dtype),
        layers=[
            LayerWeights(**{f: _cast(getattr(lw, f), dev, dtype) for f in lw.__dataclass_fields__})
            for lw in layers
        ],
        lm_head=_cast(lm_head * norm, dev, dtype),
    )
