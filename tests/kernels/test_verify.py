"""Verification kernel: parity with the per-row reference, and exactness of the emitted law (chi-square).

The exactness tests need no model: the kernel does not know contexts, so with fixed target
probabilities p_0, p_1 the first emitted token must follow p_0, and the second (given the first
proposal was accepted) p_1, whatever q the proposals were drawn from, as long as the verifier
is given that same q. Deliberately broken verifiers must fail the same test.
"""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chisquare

from kernels.sampling import draft_distribution, probs_from_logits, sample
from kernels.verify import verify, verify_greedy, verify_reference, verify_with_uniforms

V = 8
N_ROWS = 100_000


def _random_case(b, k, v, seed, num_proposals=False):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn((b, k + 1, v), generator=g) * 2, dim=-1)
    q = torch.softmax(torch.randn((b, k, v), generator=g) * 2, dim=-1)
    proposals = sample(q, g)
    uniforms = torch.rand((b, k), generator=g)
    bonus_u = torch.rand((b,), generator=g, dtype=torch.float64)
    n = torch.randint(0, k + 1, (b,), generator=g) if num_proposals else None
    return proposals, p, q, uniforms, bonus_u, n


@pytest.mark.parametrize(
    ("b", "k", "v", "with_n"),
    [(1, 1, 5, False), (7, 3, 11, False), (16, 5, 32, True), (9, 8, 4, True)],
)
def test_verify_matches_reference(b, k, v, with_n):
    proposals, p, q, u, bonus_u, n = _random_case(b, k, v, seed=b * 100 + k, num_proposals=with_n)
    got = verify_with_uniforms(proposals, p, q, u, bonus_u, n)
    want = verify_reference(proposals, p, q, u, bonus_u, n)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_greedy_fast_path_equals_general_rule_at_temperature_zero():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn((64, 4, 10), generator=g)
    best = logits.argmax(-1)
    # Proposals that follow the argmax for a random number of positions, then deviate.
    proposals = best[:, :3].clone()
    cut = torch.randint(0, 4, (64,), generator=g)
    for r in range(64):
        if cut[r] < 3:
            proposals[r, cut[r]] = (best[r, cut[r]] + 1) % 10
    q = draft_distribution(torch.randn((64, 3, 10), generator=g), 0.8)
    zeros = torch.zeros(64)
    fast = verify_greedy(proposals, logits)
    general = verify(proposals, logits, q, zeros, generator=g)
    assert torch.equal(fast[0], general[0]) and torch.equal(fast[1], general[1])
    assert torch.equal(fast[0], cut.clamp(max=3))
    with pytest.raises(ValueError, match="q is required"):
        verify(proposals, logits, None, torch.ones(64))


def _greedy_acceptance(
    proposals, target_logits, q, temperature, *, generator=None, num_proposals=None
):
    """Broken: greedy acceptance at T > 0, bonus sampled from p (the reference engine's sync-mode bug)."""
    accepted, _ = verify_greedy(proposals, target_logits, num_proposals)
    p = probs_from_logits(target_logits, temperature)
    return accepted, sample(p[torch.arange(len(accepted)), accepted], generator)


# case -> (distribution the proposals are sampled from, the q the verifier is given); None = the same
CASES = {
    "plain": (dict(temperature=1.0), None),
    "rescaled": (dict(temperature=1.0, rescale=0.3, top_n=3), None),
    "draft_temperature": (dict(temperature=0.6), None),
    "one_hot_fewer": (dict(temperature=0.0), None),  # a deterministic speculator, 1 or 2 proposals
    "rescaled_but_plain_q": (
        dict(temperature=1.0, rescale=0.3, top_n=3),
        dict(temperature=1.0),
    ),  # broken
}


def _emitted_law(case: str, verifier=verify):
    """Frequencies of the first emitted token and of the second given a >= 1, over N_ROWS rows."""
    g = torch.Generator().manual_seed(11)
    target_logits = torch.randn((1, 3, V), generator=g).expand(N_ROWS, 3, V) * 1.5
    draft_logits = torch.randn((1, 2, V), generator=g).expand(N_ROWS, 2, V) * 1.5
    sampled, given = CASES[case]
    q = draft_distribution(
        draft_logits,
        sampled["temperature"],
        rescale=sampled.get("rescale", 1.0),
        top_n=sampled.get("top_n", 1),
    )
    proposals = sample(q, g)
    if given is not None:
        q = draft_distribution(draft_logits, given["temperature"])
    num_proposals = torch.randint(1, 3, (N_ROWS,), generator=g) if case == "one_hot_fewer" else None
    accepted, bonus = verifier(
        proposals, target_logits, q, torch.ones(N_ROWS), generator=g, num_proposals=num_proposals
    )
    first = torch.where(accepted > 0, proposals[:, 0], bonus)
    second = torch.where(accepted > 1, proposals[:, 1], bonus)[accepted >= 1]
    return first, second, probs_from_logits(target_logits[0], 1.0)


def _p_value(samples: torch.Tensor, probs: torch.Tensor) -> float:
    counts = torch.bincount(samples, minlength=V).double()
    expected = probs.double() / probs.double().sum() * counts.sum()
    return float(chisquare(counts.numpy(), expected.numpy()).pvalue)


@pytest.mark.parametrize("case", ["plain", "rescaled", "draft_temperature", "one_hot_fewer"])
def test_emitted_tokens_follow_target_law(case):
    first, second, p = _emitted_law(case)
    assert _p_value(first, p[0]) > 1e-3
    assert _p_value(second, p[1]) > 1e-3


@pytest.mark.parametrize(
    ("case", "verifier"), [("plain", _greedy_acceptance), ("rescaled_but_plain_q", verify)]
)
def test_broken_verifiers_are_caught(case, verifier):
    first, second, p = _emitted_law(case, verifier)
    assert min(_p_value(first, p[0]), _p_value(second, p[1])) < 1e-3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_verify_on_cuda_matches_reference():
    proposals, p, q, u, bonus_u, n = _random_case(32, 6, 1000, seed=9, num_proposals=True)
    got = verify_with_uniforms(*(t.cuda() for t in (proposals, p, q, u, bonus_u, n)))
    want = verify_reference(proposals, p, q, u, bonus_u, n)
    assert torch.equal(got[0].cpu(), want[0]) and torch.equal(got[1].cpu(), want[1])
