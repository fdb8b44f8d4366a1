"""Shared helpers for executor tests: tiny random-init Hugging Face models saved to temp dirs.

Importing this module sets torch to one thread: the runtime is built for one thread per
process, and on a shared 2-core machine several OpenMP threads per test process oversubscribe
the cores (a 20x slowdown was measured).

``init_std`` is large on purpose: peaked logits keep greedy decoding away from near-ties, so
that exact token equality between implementations tests the code, not float rounding.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

torch.set_num_threads(1)

LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32,
}


def tiny_config(family: str = "llama", **overrides):
    """A small config of either family: GQA by default, Llama-3 rope for llama, qk-norm for qwen3."""
    base = dict(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        rms_norm_eps=1e-6,
        eos_token_id=2,
        bos_token_id=1,
    )
    if family == "llama":
        base["rope_scaling"] = dict(LLAMA3_ROPE)
        base["tie_word_embeddings"] = True
        base.update(overrides)
        return LlamaConfig(**base)
    base["head_dim"] = 32
    base["tie_word_embeddings"] = False
    base.update(overrides)
    return Qwen3Config(**base)


def save_random_model(
    path: Path, family: str = "llama", *, seed: int = 0, init_std: float = 0.02, **overrides
) -> Path:
    """Build a random-init HF model of the family, save it with save_pretrained, return its dir."""
    config = tiny_config(family, initializer_range=init_std, **overrides)
    torch.manual_seed(seed)
    cls = LlamaForCausalLM if family == "llama" else Qwen3ForCausalLM
    model = cls(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    return path


def load_hf(path: Path):
    """The HF model of a saved dir, float32, eval mode, eager attention."""
    cls = (
        LlamaForCausalLM
        if (path / "config.json").read_text().find('"llama"') >= 0
        else Qwen3ForCausalLM
    )
    return cls.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager").eval()


def save_perturbed_copy(src: Path, dst: Path, *, noise: float, seed: int = 1) -> Path:
    """A draft for ``src``: the same model with Gaussian noise (relative scale ``noise``) on every weight.

    Close enough to the target that some proposals are accepted and some rejected.
    """
    model = load_hf(src)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * noise * p.std())
    model.save_pretrained(dst)
    return dst
