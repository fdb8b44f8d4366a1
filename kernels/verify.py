"""Verification (kernel 1): accept a prefix of B x k draft proposals and draw the bonus token.

Inputs: proposals x [B, k]; target logits [B, k+1, V] (position i is the target's law of the
token after x_1..x_i); q [B, k, V], exactly the distributions the proposals were sampled from
(kernels.sampling.draft_distribution, Saguaro's rescale included); per-row target temperatures
(0 = greedy row); optionally the number of proposals per row (a fast speculator may propose
fewer than k; positions past it are never accepted; a deterministic speculator's q is one-hot
at its token, which keeps the rule below exact).

Rule (speculative sampling): accept x_{i+1} while u_i < min(1, p_i(x_{i+1}) / q_i(x_{i+1})); at
the first rejection, position a, draw the bonus token from norm(max(0, p_a - q_a)) (p_a if that
is all zero); if every proposal of the row is accepted, draw it from p_a. With p one-hot (T = 0)
this is greedy verification: accept while x equals the target's argmax, bonus = argmax.

``verify`` draws the random numbers from a ``torch.Generator`` and calls
``verify_with_uniforms``; ``verify_reference`` is the same rule written as a per-row loop
(parity tests feed both the same acceptance and bonus uniforms). ``verify_greedy`` is the fast
path when every row is greedy (no q needed).
Imports torch and kernels.sampling only.
"""

from __future__ import annotations

import torch

from kernels.sampling import probs_from_logits, row_uniforms, sample_with_uniform


def _accepted_len(accept: torch.Tensor, num_proposals: torch.Tensor | None) -> torch.Tensor:
    """Length of the all-true prefix of each row of accept [B, k], at most num_proposals [B]."""
    if num_proposals is not None:
        b, k = accept.shape
        accept = accept & (
            torch.arange(k, device=accept.device)[None, :] < num_proposals.view(b, 1)
        )
    return accept.long().cumprod(dim=-1).sum(dim=-1)


def verify_greedy(
    proposals: torch.Tensor, target_logits: torch.Tensor, num_proposals: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy verification of every row: accept while x equals the target argmax; bonus = argmax."""
    k = proposals.shape[1]
    best = target_logits.argmax(dim=-1)
    accepted_len = _accepted_len(proposals == best[:, :k], num_proposals)
    return accepted_len, best.gather(1, accepted_len[:, None])[:, 0]


def verify_with_uniforms(
    proposals: torch.Tensor,
    p: torch.Tensor,
    q: torch.Tensor,
    uniforms: torch.Tensor,
    bonus_u: torch.Tensor,
    num_proposals: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The rule on target probabilities p [B, k+1, V] and q [B, k, V], given acceptance uniforms
    u [B, k] and the bonus draw's uniforms bonus_u [B] (``kernels.sampling.sample_with_uniform``)."""
    b, k = proposals.shape
    idx = proposals[..., None]
    p_x = p[:, :k].gather(-1, idx)[..., 0]
    q_x = q.gather(-1, idx)[..., 0]
    # u < p/q without dividing (q_x > 0 for a token sampled from q)
    accepted_len = _accepted_len(uniforms * q_x < p_x, num_proposals)
    n = num_proposals if num_proposals is not None else k
    rows = torch.arange(b, device=p.device)
    p_a = p[rows, accepted_len]
    q_a = q[rows, accepted_len.clamp(max=k - 1)]
    rejected = (accepted_len < n)[:, None]
    residual = torch.where(rejected, (p_a - q_a).clamp_(min=0.0), p_a)
    residual = torch.where(residual.sum(dim=-1, keepdim=True) > 0, residual, p_a)
    return accepted_len, sample_with_uniform(residual, bonus_u)


def verify(
    proposals: torch.Tensor,
    target_logits: torch.Tensor,
    q: torch.Tensor | None,
    temperature: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    num_proposals: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Verify B x k proposals; returns (accepted_len [B], bonus_token [B]).

    temperature: [B] target temperatures (0 = greedy). q may be None only if every row is greedy
    (then the draft's distribution does not matter: greedy acceptance is exact).
    """
    if q is None:
        if bool((temperature > 0).any()):
            raise ValueError("verify: q is required when any row samples (temperature > 0)")
        return verify_greedy(proposals, target_logits, num_proposals)
    b, k = proposals.shape
    p = probs_from_logits(target_logits, temperature)
    uniforms = torch.rand((b, k), generator=generator, device=p.device)
    bonus_u = row_uniforms((b,), generator, p.device)
    return verify_with_uniforms(proposals, p, q, uniforms, bonus_u, num_proposals)


def verify_reference(
    proposals: torch.Tensor,
    p: torch.Tensor,
    q: torch.Tensor,
    uniforms: torch.Tensor,
    bonus_u: torch.Tensor,
    num_proposals: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row loop of the same rule (the parity oracle for ``verify_with_uniforms``); the bonus
    walks the row's running sum in Python floats."""
    b, k = proposals.shape
    accepted = torch.zeros(b, dtype=torch.long)
    bonus = torch.zeros(b, dtype=torch.long)
    for r in range(b):
        n = int(num_proposals[r]) if num_proposals is not None else k
        a = 0
        while a < n:
            x = int(proposals[r, a])
            px, qx = float(p[r, a, x]), float(q[r, a, x])
            ratio = px / qx if qx > 0 else (1.0 if px > 0 else 0.0)
            if float(uniforms[r, a]) >= min(1.0, ratio):
                break
            a += 1
        dist = p[r, a].clone()
        if a < n:
            residual = torch.clamp(p[r, a] - q[r, a], min=0.0)
            if float(residual.sum()) > 0:
                dist = residual
        accepted[r] = a
        weights = dist.double().tolist()
        target, run = float(bonus_u[r]) * sum(weights), 0.0
        pick = len(weights) - 1
        for i, w in enumerate(weights):
            run += w
            if run > target:
                pick = i
                break
        bonus[r] = pick
    return accepted, bonus
