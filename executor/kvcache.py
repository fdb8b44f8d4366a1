"""Preallocated key/value caches: the per-sequence trunk cache and the branch scratch buffer.

``KVCache`` holds B sequences (rows), each up to ``capacity`` positions, for every layer, laid
out [layers, B, kv_heads, capacity, head_dim] so that attention reads a contiguous prefix. The
model writes keys and values at explicit per-row positions; ``lengths`` [B] is the engines'
bookkeeping of how many positions of each row are valid. Rolling back to an accepted prefix is
just setting ``lengths`` (positions past it are overwritten by the next forward): no copy.

``BranchScratch`` holds the chains of B*M speculative branches (SSD tree decode): depth-major
keys/values [layers, B*M, kv_heads, depth, head_dim], separate from the trunk so that branches
never copy their sequence's prefix. Imports torch only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


class CacheError(ValueError):
    """A cache request that cannot be served (capacity, shapes)."""


@dataclass
class KVCache:
    """Trunk cache of B sequences. Build it with ``KVCache.allocate`` (or ``Decoder.new_cache``)."""

    k: torch.Tensor
    v: torch.Tensor
    lengths: torch.Tensor
    row_base: torch.Tensor  # [B, kv_heads]: flat index of (row, head, position 0) in one layer

    @classmethod
    def allocate(
        cls,
        num_layers: int,
        batch_size: int,
        num_kv_heads: int,
        capacity: int,
        head_dim: int,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> KVCache:
        if batch_size < 1 or capacity < 1:
            raise CacheError(
                f"KVCache: batch_size and capacity must be >= 1, got {batch_size}, {capacity}"
            )
        shape = (num_layers, batch_size, num_kv_heads, capacity, head_dim)
        rows = torch.arange(batch_size, device=device)[:, None] * num_kv_heads
        return cls(
            k=torch.zeros(shape, device=device, dtype=dtype),
            v=torch.zeros(shape, device=device, dtype=dtype),
            lengths=torch.zeros(batch_size, device=device, dtype=torch.long),
            row_base=(rows + torch.arange(num_kv_heads, device=device)[None, :]) * capacity,
        )

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    @property
    def num_bytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()

    def set_lengths(self, lengths: torch.Tensor) -> None:
        """Roll back (or forward) every row to the given number of valid positions; no data moves."""
        self.lengths.copy_(lengths)

    def reset(self) -> None:
        self.lengths.zero_()


@dataclass
class BranchScratch:
    """Chain keys/values of ``num_branches`` branches, ``depth`` positions each (SSD tree decode)."""

    k: torch.Tensor
    v: torch.Tensor

    @classmethod
    def allocate(
        cls,
        num_layers: int,
        num_branches: int,
        num_kv_heads: int,
        depth: int,
        head_dim: int,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> BranchScratch:
        if num_branches < 1 or depth < 1:
            raise CacheError(
                f"BranchScratch: num_branches and depth must be >= 1, got {num_branches}, {depth}"
            )
        shape = (num_layers, num_branches, num_kv_heads, depth, head_dim)
        return cls(
            k=torch.zeros(shape, device=device, dtype=dtype),
            v=torch.zeros(shape, device=device, dtype=dtype),
        )

    @property
    def num_branches(self) -> int:
        return self.k.shape[1]

    @property
    def depth(self) -> int:
        return self.k.shape[3]
