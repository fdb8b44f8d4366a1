"""Cost model: seconds for forward passes, link messages and the fast speculator (pure functions).

Everything here is arithmetic on a Profile's parameters; the simulator advances time only by
these numbers. Functions accept plain numbers or numpy arrays of equal shape (the fast engine
costs every step of a batch in one call). Imports numpy and the contract modules only; never
SimPy, torch or the executor.

Forward pass of ``batch`` sequences with ``tokens`` new tokens each over ``context`` tokens per
sequence (the new ones included; a mean when sequences differ)::

    fixed_s + max(weight_s + kv_s * batch * context, compute_s * batch * tokens)
            + token_s * batch * tokens + attn_s * batch * tokens * context

Message sizes follow DESIGN.md section 4 / REFERENCE.md 3.1: a request carries per sequence the
cache key (sequence id, accepted length, recovery token), the context length and the draft
temperature; a response carries per sequence a hit flag and k token ids, and at temperature > 0
the draft's distribution over the vocabulary at each of the k positions (verification needs q).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ssdsim.policy import Policy
from ssdsim.profile import ForwardLatency, LinkLatency, Profile

INT_BYTES = 8
REQUEST_INTS_PER_SEQ = 5  # key (seq, accepted_len, token), context length, draft temperature
MESSAGE_HEADER_BYTES = 4 * INT_BYTES  # command, batch, k, budget


def forward_s(lat: ForwardLatency, batch: Any, tokens: Any, context: Any) -> Any:
    """Seconds of one forward pass; see the module docstring. Zero batch costs nothing."""
    bn = batch * tokens
    memory = lat.weight_s + lat.kv_s * batch * context
    compute = lat.compute_s * bn
    t = lat.fixed_s + np.maximum(memory, compute) + lat.token_s * bn + lat.attn_s * bn * context
    if isinstance(t, np.ndarray):
        return np.where(np.asarray(batch) > 0, t, 0.0)
    return float(t) if batch > 0 else 0.0


def forwards_s(
    lat: ForwardLatency, batch: Any, tokens: Any, context0: Any, context_step: Any, count: int
) -> Any:
    """Total seconds of ``count`` forwards whose context grows by ``context_step`` each time.

    Forward ``i`` (0-based) sees ``context0 + i * context_step`` tokens (autoregressive drafting:
    step 1; tree decode: step M). Computed for all ``i`` at once (arrays broadcast).
    """
    context0 = np.asarray(context0)
    steps = np.arange(count).reshape((count,) + (1,) * context0.ndim)
    contexts = context0 + steps * context_step
    total = forward_s(lat, np.asarray(batch), tokens, contexts).sum(axis=0)
    return float(total) if np.ndim(total) == 0 else total


def link_s(link: LinkLatency, nbytes: Any) -> Any:
    """Seconds for one message of ``nbytes`` across the draft-target link."""
    return link.fixed_s + link.per_byte_s * nbytes


def request_bytes(batch: Any) -> Any:
    """Bytes of one speculation request for ``batch`` sequences."""
    return MESSAGE_HEADER_BYTES + batch * REQUEST_INTS_PER_SEQ * INT_BYTES


def response_bytes(batch: Any, k: int, vocab_size: int, dist_bytes: int, with_dists: bool) -> Any:
    """Bytes of one response: per sequence a hit flag and k token ids, plus k distributions if sampling."""
    per_seq = (1 + k) * INT_BYTES + (k * vocab_size * dist_bytes if with_dists else 0)
    return MESSAGE_HEADER_BYTES + batch * per_seq


def fast_speculator_s(profile: Profile, batch: Any) -> Any:
    """Seconds of the fast fallback speculator for ``batch`` missed sequences (0 when none)."""
    t = profile.fast_s + profile.fast_seq_s * batch
    if isinstance(t, np.ndarray):
        return np.where(np.asarray(batch) > 0, t, 0.0)
    return float(t) if batch > 0 else 0.0


def step_overhead_s(profile: Profile, batch: Any) -> Any:
    """Host work on the target's critical path per decode step (sampling, verification, bookkeeping)."""
    return profile.step_overhead_s + profile.seq_overhead_s * batch


def ar_step_s(profile: Profile, batch: Any, context: Any) -> Any:
    """One AR step: a target forward of one token per sequence plus the step overhead."""
    return forward_s(profile.target, batch, 1, context + 1) + step_overhead_s(profile, batch)


def verify_s(profile: Profile, batch: Any, k: int, context: Any) -> Any:
    """Target verification of k+1 tokens per sequence plus the step overhead."""
    return forward_s(profile.target, batch, k + 1, context + k + 1) + step_overhead_s(
        profile, batch
    )


def draft_chain_s(profile: Profile, batch: Any, k: int, context: Any) -> Any:
    """k autoregressive draft forwards of one token per sequence (SD drafting, jit on a miss)."""
    return forwards_s(profile.draft, batch, 1, context + 1, 1, k)


def prespec_s(profile: Profile, batch: Any, k: int, budget: int, context: Any) -> Any:
    """SSD pre-speculation: a glue forward of k+1 tokens, then k tree forwards of ``budget`` tokens.

    Context: the glue block sits after the committed tokens; tree layer d adds ``budget`` scratch
    slots (REFERENCE.md 3.4), so tree forward d sees context + (k+1) + (d+1)*budget tokens.
    """
    glue = forward_s(profile.draft, batch, k + 1, context + k + 1)
    tree = forwards_s(profile.draft, batch, budget, context + k + 1 + budget, budget, k)
    return glue + tree


def cache_bytes(profile: Profile, policy: Policy, batch: int) -> int:
    """Draft-device memory of one round's speculation cache: B*M branches of k distributions and KV."""
    branches = batch * policy.budget
    dists = branches * policy.k * profile.vocab_size * profile.dist_bytes
    kv = branches * policy.k * profile.draft_kv_bytes_per_token
    return int(dists + kv)
