"""Our compact decoder for the Llama and Qwen3 families, with per-row positions and branch decode.

Two entry points, both under ``torch.inference_mode`` by the caller:

* ``forward(tokens [B, n], start [B], cache)``: row b's tokens sit at positions
  start[b] .. start[b]+n-1; their keys/values are written into the cache there and each token
  attends to positions 0 .. its own. Rows may be at different lengths (after verification);
  ``rows`` runs a subset of the cache's rows (SSD's jit decode of missed rows).
* ``forward_branches(tokens [R], trunk, trunk_len [R], scratch, depth)``: one tree step of
  R = B*M branches (branch r belongs to cache row r // M): the token sits at position
  trunk_len[r] + depth, attends to the trunk's first trunk_len[r] positions (read in place) and
  to its chain in ``scratch`` (depths 0..depth), written at ``depth`` (kernels.branch_attention).

Logits match transformers' LlamaForCausalLM / Qwen3ForCausalLM on the same weights (float32 to
1e-4). Imports torch, kernels and executor.model / executor.kvcache only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from executor.kvcache import BranchScratch, CacheError, KVCache
from executor.model.config import ModelConfig, load_config
from executor.model.matrix import Matrix
from executor.model.rope import apply_rope, rope_table
from executor.model.weights import DecoderWeights, LayerWeights, load_weights
from kernels.branch_attention import branch_attention, branch_trunk_mask


@dataclass(frozen=True)
class _Layer:
    """One layer's matrices (norm weights folded in) and Qwen3's per-head q/k norm weights."""

    qkv: Matrix
    o: Matrix
    gate_up: Matrix
    down: Matrix
    qk_norm: torch.Tensor | None

    @classmethod
    def of(cls, lw: LayerWeights, dnn_from_rows: int | None) -> _Layer:
        d = dnn_from_rows
        return cls(
            Matrix(lw.qkv, lw.qkv_bias, dnn_from_rows=d),
            Matrix(lw.o, lw.o_bias, dnn_from_rows=d),
            Matrix(lw.gate_up, dnn_from_rows=d),
            Matrix(lw.down, dnn_from_rows=d),
            lw.qk_norm,
        )


# Models with more matrix weight than this stream it from memory on every forward: on CPU their
# products of DNN_FROM_ROWS rows or more go through oneDNN (executor.model.matrix).
DNN_MIN_BYTES = 16 * 2**20
DNN_FROM_ROWS = 4


def _dnn_from_rows(weights: DecoderWeights) -> int | None:
    mats = [weights.lm_head]
    for lw in weights.layers:
        mats += [lw.qkv, lw.o, lw.gate_up, lw.down]
    size = sum(m.numel() * m.element_size() for m in mats)
    return DNN_FROM_ROWS if size > DNN_MIN_BYTES else None


class Decoder:
    """A loaded model: config, fused weights, and a RoPE table covering every cache it made."""

    def __init__(
        self,
        config: ModelConfig,
        weights: DecoderWeights,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.config = config
        self.w = weights
        dnn = _dnn_from_rows(weights)
        self.layers = [_Layer.of(lw, dnn) for lw in weights.layers]
        self.lm_head = Matrix(weights.lm_head, dnn_from_rows=dnn)
        self.device = torch.device(device)
        self.dtype = dtype
        self.scale = config.head_dim**-0.5
        self._cos, self._sin = rope_table(config, 0, self.device, dtype)
        self._arange = torch.arange(0, device=self.device)  # positions 0.., as long as the table

    @classmethod
    def from_dir(
        cls,
        model_dir: str | Path,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Decoder:
        config = load_config(model_dir)
        return cls(
            config,
            load_weights(model_dir, config, device=device, dtype=dtype),
            device=device,
            dtype=dtype,
        )

    # -- caches ------------------------------------------------------------------------------
    def ensure_positions(self, num_positions: int) -> None:
        """Grow the RoPE table to cover positions 0 .. num_positions-1."""
        if self._cos.shape[0] < num_positions:
            self._cos, self._sin = rope_table(self.config, num_positions, self.device, self.dtype)
            self._arange = torch.arange(num_positions, device=self.device)

    def new_cache(self, batch_size: int, capacity: int) -> KVCache:
        c = self.config
        self.ensure_positions(capacity)
        return KVCache.allocate(
            c.num_layers,
            batch_size,
            c.num_kv_heads,
            capacity,
            c.head_dim,
            device=self.device,
            dtype=self.dtype,
        )

    def new_scratch(self, num_branches: int, depth: int) -> BranchScratch:
        c = self.config
        return BranchScratch.allocate(
            c.num_layers,
            num_branches,
            c.num_kv_heads,
            depth,
            c.head_dim,
            device=self.device,
            dtype=self.dtype,
        )

    # -- pieces of a layer (hidden states are 2-D: [tokens, hidden]) ------------------------
    def _rms(self, x: torch.Tensor) -> torch.Tensor:
        """RMSNorm without weight (weights are folded into the next matrix).

        layer_norm of [x, -x] has mean 0 and variance mean(x^2), so its first half is exactly
        x / sqrt(mean(x^2) + eps): one fused kernel instead of the several rms_norm runs on CPU.
        """
        d = x.shape[-1]
        both = torch.cat((x, x.neg()), dim=-1)
        return torch.layer_norm(both, (2 * d,), None, None, self.config.rms_norm_eps)[..., :d]

    def _qkv(
        self,
        h: torch.Tensor,
        lw: _Layer,
        cos: torch.Tensor,
        sin: torch.Tensor,
        b: int,
        n: int,
    ) -> tuple[torch.Tensor, ...]:
        """Projections of h [b*n, hidden] -> q [b, H, n, D], k and v [b, H_kv, n, D], roped."""
        c = self.config
        qkv = lw.qkv(self._rms(h)).view(b, n, -1)
        split = (c.num_heads + c.num_kv_heads) * c.head_dim
        qk = qkv[..., :split].view(b, n, c.num_heads + c.num_kv_heads, c.head_dim)
        if lw.qk_norm is not None:
            qk = self._rms(qk) * lw.qk_norm
        qk = apply_rope(qk, cos, sin)
        q = qk[:, :, : c.num_heads].transpose(1, 2)
        k = qk[:, :, c.num_heads :].transpose(1, 2)
        v = qkv[..., split:].view(b, n, c.num_kv_heads, c.head_dim).transpose(1, 2)
        return q, k, v

    def _mlp(self, h: torch.Tensor, lw: _Layer) -> torch.Tensor:
        gate, up = lw.gate_up(self._rms(h)).chunk(2, dim=-1)
        return lw.down(F.silu(gate) * up, h)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self._rms(h))

    # -- forward over the trunk --------------------------------------------------------------
    def forward(
        self,
        tokens: torch.Tensor,
        start: torch.Tensor,
        cache: KVCache,
        *,
        rows: torch.Tensor | None = None,
        kv_len: int | None = None,
        logits_at: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run tokens [B, n] at per-row positions start [B]; return logits.

        rows: cache rows of the B inputs (default 0..B-1 = all rows). kv_len: an upper bound
        on start + n over the rows (default: computed, one host sync). logits_at: None for
        [B, n, V]; an int position or a [B] tensor of positions for [B, V].
        """
        c = self.config
        b, n = tokens.shape
        if kv_len is None:
            lo, hi = (int(x) for x in start.aminmax())
            kv_len = hi + n
            need_mask = n > 1 or lo != hi
        else:
            need_mask = True
        if kv_len > cache.capacity:
            raise CacheError(
                f"forward: positions up to {kv_len} exceed the cache capacity {cache.capacity}"
            )
        self.ensure_positions(max(kv_len, n))
        pos = start[:, None] + self._arange[None, :n]
        cos, sin = self._cos[pos].unsqueeze(2), self._sin[pos].unsqueeze(2)
        mask = None
        if need_mask:
            mask = (self._arange[None, None, :kv_len] <= pos[:, :, None]).unsqueeze(1)
        base = cache.row_base if rows is None else cache.row_base.index_select(0, rows)
        write_idx = (base[:, :, None] + pos[:, None, :]).view(-1)
        h = self.w.embed[tokens.view(-1)]
        for i, lw in enumerate(self.layers):
            q, k, v = self._qkv(h, lw, cos, sin, b, n)
            ck, cv = cache.k[i], cache.v[i]
            ck.view(-1, c.head_dim).index_copy_(0, write_idx, k.reshape(-1, c.head_dim))
            cv.view(-1, c.head_dim).index_copy_(0, write_idx, v.reshape(-1, c.head_dim))
            keys, values = ck[:, :, :kv_len], cv[:, :, :kv_len]
            if rows is not None:
                keys, values = keys.index_select(0, rows), values.index_select(0, rows)
            attn = F.scaled_dot_product_attention(
                q, keys, values, attn_mask=mask, scale=self.scale, enable_gqa=True
            )
            h = self._mlp(lw.o(attn.transpose(1, 2).reshape(b * n, -1), h), lw)
        if logits_at is None:
            return self._logits(h).view(b, n, -1)
        h = h.view(b, n, -1)
        if isinstance(logits_at, int):
            return self._logits(h[:, logits_at])
        return self._logits(h[torch.arange(b, device=self.device), logits_at])

    # -- forward of speculative branches -----------------------------------------------------
    def forward_branches(
        self,
        tokens: torch.Tensor,
        trunk: KVCache,
        trunk_len: torch.Tensor,
        scratch: BranchScratch,
        depth: int,
        *,
        kv_len: int | None = None,
    ) -> torch.Tensor:
        """One tree step: tokens [R] (R = B*M, branch r on trunk row r // M); returns logits [R, V].

        Branch r's token sits at position trunk_len[r] + depth and attends to trunk positions
        < trunk_len[r] and to its chain depths 0..depth (its key/value is written at ``depth``).
        kv_len: an upper bound on trunk_len (default: computed, one host sync).
        """
        r = tokens.shape[0]
        b = trunk.batch_size
        if r % b or r > scratch.num_branches or depth >= scratch.depth:
            raise CacheError(
                f"forward_branches: {r} branches on {b} rows, depth {depth}, scratch {tuple(scratch.k.shape[1::2])}"
            )
        if kv_len is None:
            kv_len = int(trunk_len.max())
        pos = trunk_len + depth
        if int(kv_len) + depth >= self._cos.shape[0]:
            self.ensure_positions(int(kv_len) + depth + 1)
        cos, sin = self._cos[pos][:, None, None], self._sin[pos][:, None, None]
        mask = branch_trunk_mask(trunk_len, b, kv_len)
        h = self.w.embed[tokens]
        for i, lw in enumerate(self.layers):
            q, k, v = self._qkv(h, lw, cos, sin, r, 1)
            sk, sv = scratch.k[i, :r], scratch.v[i, :r]
            sk[:, :, depth] = k[:, :, 0]
            sv[:, :, depth] = v[:, :, 0]
            attn = branch_attention(
                q[:, :, 0],
                trunk.k[i, :, :, :kv_len],
                trunk.v[i, :, :, :kv_len],
                mask,
                sk[:, :, : depth + 1],
                sv[:, :, : depth + 1],
                self.scale,
            )
            h = self._mlp(lw.o(attn.reshape(r, -1), h), lw)
        return self._logits(h)
