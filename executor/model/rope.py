"""Rotary position embeddings: inverse frequencies (plain or Llama-3 scaled) and a cos/sin table.

The table is computed in float32 exactly as transformers does (position * inv_freq, then cos and
sin of the concatenated halves) and cast to the model dtype, so rotated queries and keys match
it bit for bit in float32. Imports torch only.
"""

from __future__ import annotations

import math

import torch

from executor.model.config import ModelConfig


def inverse_frequencies(config: ModelConfig) -> torch.Tensor:
    """Per-pair inverse frequencies [head_dim / 2] (float32), Llama-3 scaled when configured."""
    dim = config.head_dim
    exponents = torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float32) / dim
    inv_freq = 1.0 / (config.rope_theta**exponents)
    scaling = config.rope_scaling_dict
    if scaling is None:
        return inv_freq
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_len = scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    # Long wavelengths are divided by factor, short ones kept, the band between interpolated.
    scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old_len / high) * ~(wavelen > old_len / low)
    return torch.where(medium, smoothed, scaled)


def rope_table(
    config: ModelConfig, num_positions: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables [num_positions, head_dim]; sin carries the sign of rotate-half.

    Rotating x is then ``x * cos + swap_halves(x) * sin`` where swap_halves(x) = [x2, x1], which
    equals transformers' ``x * cos + rotate_half(x) * sin`` with rotate_half(x) = [-x2, x1].
    """
    inv_freq = inverse_frequencies(config).to(device)
    pos = torch.arange(num_positions, device=device, dtype=torch.float32)
    freqs = pos[:, None] * inv_freq[None, :]
    cos = torch.cat((freqs, freqs), dim=-1).cos()
    sin = freqs.sin()
    signed_sin = torch.cat((-sin, sin), dim=-1)
    return cos.to(dtype), signed_sin.to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [..., heads, head_dim] with cos/sin [..., 1, head_dim] gathered at its positions."""
    half = x.shape[-1] // 2
    swapped = torch.cat((x[..., half:], x[..., :half]), dim=-1)
    return x * cos + swapped * sin
