"""Branch attention (kernel 3): one query per speculative branch over its sequence's trunk plus its own chain.

SSD's tree decode advances R = B*M branches together. Branch r belongs to sequence r // M (the M
branches of a sequence are consecutive rows) and attends to

* the first ``trunk_len[r]`` positions of its sequence's trunk keys/values (shared by all M
  branches of that sequence, read in place, never copied), and
* its own chain: ``c`` keys/values in a separate scratch buffer (all valid).

``branch_attention`` scores the trunk and the chain separately, joins the two score blocks
(the joint softmax is the log-sum-exp merge of the two partial attentions) and sums the two
weighted value reads. ``branch_attention_reference`` materialises each branch's full context
(trunk prefix then chain) and runs plain attention per branch; the parity tests hold the two
equal. Grouped-query attention: query head h reads key/value head h // (H / H_kv).

Imports torch only; called by executor.model.decoder (and SSD's draft worker through it).
"""

from __future__ import annotations

import torch


def branch_trunk_mask(trunk_len: torch.Tensor, num_seqs: int, kv_len: int) -> torch.Tensor:
    """Additive mask [B, 1, 1, M, kv_len] (0 where a branch may attend, -inf elsewhere); build once per step."""
    num_branches = trunk_len.shape[0]
    pos = torch.arange(kv_len, device=trunk_len.device)
    valid = pos[None, :] < trunk_len[:, None]
    mask = torch.zeros(valid.shape, device=trunk_len.device, dtype=torch.float32)
    mask.masked_fill_(~valid, float("-inf"))
    return mask.view(num_seqs, 1, 1, num_branches // num_seqs, kv_len)


def branch_attention(
    q: torch.Tensor,
    trunk_k: torch.Tensor,
    trunk_v: torch.Tensor,
    trunk_mask: torch.Tensor,
    chain_k: torch.Tensor,
    chain_v: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """Attention of R = B*M branch queries over shared trunks plus private chains.

    q [R, H, D]; trunk_k/v [B, H_kv, L, D] (a view of the trunk cache, L >= every trunk_len);
    trunk_mask from ``branch_trunk_mask``; chain_k/v [R, H_kv, c, D] with c >= 1. Returns [R, H, D].
    """
    num_branches, num_heads, head_dim = q.shape
    num_seqs, num_kv_heads, kv_len, _ = trunk_k.shape
    m = num_branches // num_seqs
    g = num_heads // num_kv_heads
    c = chain_k.shape[2]
    # [B, H_kv, G, M, D]: the M branches of a sequence share one matmul against its trunk.
    qg = q.view(num_seqs, m, num_kv_heads, g, head_dim).permute(0, 2, 3, 1, 4)
    s_trunk = torch.matmul(
        qg.reshape(num_seqs, num_kv_heads, g * m, head_dim), trunk_k.transpose(-1, -2)
    )
    s_trunk = s_trunk.view(num_seqs, num_kv_heads, g, m, kv_len)
    ck = chain_k.view(num_seqs, m, num_kv_heads, c, head_dim)
    s_chain = torch.einsum("bkgmd,bmkcd->bkgmc", qg, ck)
    acc = torch.promote_types(q.dtype, torch.float32)  # softmax in at least float32
    scores = torch.cat((s_trunk.to(acc) + trunk_mask, s_chain.to(acc)), dim=-1) * scale
    w = torch.softmax(scores, dim=-1).to(q.dtype)
    w_trunk = w[..., :kv_len].reshape(num_seqs, num_kv_heads, g * m, kv_len)
    out = torch.matmul(w_trunk, trunk_v).view(num_seqs, num_kv_heads, g, m, head_dim)
    cv = chain_v.view(num_seqs, m, num_kv_heads, c, head_dim)
    out = out + torch.einsum("bkgmc,bmkcd->bkgmd", w[..., kv_len:], cv)
    return out.permute(0, 3, 1, 2, 4).reshape(num_branches, num_heads, head_dim)


def branch_attention_reference(
    q: torch.Tensor,
    trunk_k: torch.Tensor,
    trunk_v: torch.Tensor,
    trunk_len: torch.Tensor,
    chain_k: torch.Tensor,
    chain_v: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """Plain per-branch attention over the materialised context [trunk[:trunk_len], chain]."""
    num_branches, num_heads, _ = q.shape
    num_seqs, num_kv_heads = trunk_k.shape[:2]
    m = num_branches // num_seqs
    g = num_heads // num_kv_heads
    out = torch.empty_like(q)
    acc = torch.promote_types(q.dtype, torch.float32)
    for r in range(num_branches):
        b, n = r // m, int(trunk_len[r])
        keys = torch.cat((trunk_k[b, :, :n], chain_k[r]), dim=1).repeat_interleave(g, dim=0)
        values = torch.cat((trunk_v[b, :, :n], chain_v[r]), dim=1).repeat_interleave(g, dim=0)
        scores = torch.einsum("hd,hld->hl", q[r].to(acc), keys.to(acc)) * scale
        out[r] = torch.einsum("hl,hld->hd", torch.softmax(scores, dim=-1), values.to(acc)).to(
            q.dtype
        )
    return out
