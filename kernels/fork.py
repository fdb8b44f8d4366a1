"""Fork (kernel 2): the bonus-token candidates SSD prepares branches for, and a token's rank among them.

Given the draft's logits at the k+1 glue positions j = 0..k (position j: the draft's law of the
token after accepting j proposals), the candidates at j are the draft's top tokens by raw logit,
excluding the speculated token x_{j+1} for j < k (a rejected token is never the bonus token: its
residual mass is 0). Row b takes ``fan_out[b, j]`` candidates at position j: the after-hit or
after-miss list of its sequence (``fan_out_rows``); every row must have the same total M so that
the tree has B*M branches. Output order: row-major, then j, then rank.

``candidate_rank`` gives the 1-based rank of a token (the bonus token) among the candidates at
a row's accepted length, with the same exclusion, so that a trace can tell for any fan-out F
whether a cache of that fan-out would have hit (rank <= F). Ties in the logits are ranked by
token id (lower first); ``fork`` uses topk, whose order among exactly equal logits may differ.

``fork_reference`` is the per-row loop the parity tests compare against. Imports torch only.
"""

from __future__ import annotations

import torch


def fan_out_rows(
    cache_hit: torch.Tensor, fan_out: tuple[int, ...], fan_out_miss: tuple[int, ...]
) -> torch.Tensor:
    """Per-row fan-out [B, k+1]: the after-hit list where cache_hit [B] is true, else the after-miss list."""
    if len(fan_out) != len(fan_out_miss) or sum(fan_out) != sum(fan_out_miss):
        raise ValueError(
            f"fan_out_rows: lists must have equal length and sum, got {fan_out} and {fan_out_miss}"
        )
    hit = torch.tensor(fan_out, device=cache_hit.device, dtype=torch.long)
    miss = torch.tensor(fan_out_miss, device=cache_hit.device, dtype=torch.long)
    return torch.where(cache_hit[:, None], hit[None, :], miss[None, :])


def fork(
    draft_logits: torch.Tensor, proposals: torch.Tensor, fan_out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates of every row: (tokens [B, M], glue index j [B, M]).

    draft_logits [B, k+1, V]; proposals [B, k]; fan_out [B, k+1] with equal row sums M.
    """
    b, k1, v = draft_logits.shape
    k = k1 - 1
    max_fan_out = int(fan_out.max())
    if (k and int(fan_out[:, :k].max()) > v - 1) or int(fan_out[:, k].max()) > v:
        raise ValueError(
            f"fork: fan-out {fan_out.tolist()} asks for more candidates than a vocabulary of {v} holds"
        )
    cand = draft_logits.topk(min(max_fan_out + 1, v), dim=-1).indices  # [B, k+1, F+1]
    excluded = torch.zeros(cand.shape, dtype=torch.bool, device=cand.device)
    excluded[:, :k] = cand[:, :k] == proposals[..., None]
    kept_rank = (~excluded).long().cumsum(dim=-1)  # 1-based rank among non-excluded candidates
    take = ~excluded & (kept_rank <= fan_out[..., None])
    m = int(fan_out[0].sum())
    glue_index = torch.arange(k1, device=cand.device)[None, :, None].expand(cand.shape)
    return cand[take].view(b, m), glue_index[take].view(b, m)


def candidate_rank(
    draft_logits: torch.Tensor,
    proposals: torch.Tensor,
    accepted_len: torch.Tensor,
    token: torch.Tensor,
) -> torch.Tensor:
    """1-based rank [B] of token [B] among the candidates at position accepted_len [B] (proposal excluded)."""
    b, k1, v = draft_logits.shape
    k = k1 - 1
    rows = torch.arange(b, device=draft_logits.device)
    logits = draft_logits[rows, accepted_len]  # [B, V]
    own = logits.gather(1, token[:, None])
    ids = torch.arange(v, device=logits.device)[None, :]
    ahead = (logits > own) | ((logits == own) & (ids < token[:, None]))
    if k > 0:
        prop = proposals.gather(1, accepted_len.clamp(max=k - 1)[:, None])[:, 0]
        prop_ahead = ahead.gather(1, prop[:, None])[:, 0] & (accepted_len < k)
    else:
        prop_ahead = torch.zeros(b, dtype=torch.bool, device=logits.device)
    return 1 + ahead.sum(dim=-1) - prop_ahead.long()


def fork_reference(
    draft_logits: torch.Tensor, proposals: torch.Tensor, fan_out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row, per-position loop of ``fork`` (stable sort, ties by token id)."""
    b, k1, _ = draft_logits.shape
    tokens: list[list[int]] = []
    index: list[list[int]] = []
    for r in range(b):
        row_t, row_j = [], []
        for j in range(k1):
            order = torch.sort(draft_logits[r, j], descending=True, stable=True).indices.tolist()
            if j < k1 - 1:
                order = [t for t in order if t != int(proposals[r, j])]
            take = order[: int(fan_out[r, j])]
            row_t += take
            row_j += [j] * len(take)
        tokens.append(row_t)
        index.append(row_j)
    return torch.tensor(tokens, dtype=torch.long), torch.tensor(index, dtype=torch.long)
