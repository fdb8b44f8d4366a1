"""Fork kernel: parity with the per-row reference, exclusion of the speculated token, and rank consistency."""

from __future__ import annotations

import pytest
import torch

from kernels.fork import candidate_rank, fan_out_rows, fork, fork_reference


def _case(b, k, v, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn((b, k + 1, v), generator=g)
    # Half the proposals are the draft's own top token (the usual case), half arbitrary.
    proposals = torch.randint(0, v, (b, k), generator=g)
    top = logits[:, :k].argmax(-1)
    proposals = torch.where(torch.rand((b, k), generator=g) < 0.5, top, proposals)
    hit = torch.rand(b, generator=g) < 0.5
    return logits, proposals, hit


@pytest.mark.parametrize(
    ("b", "k", "v", "fan_out", "fan_out_miss"),
    [
        (1, 1, 6, (2, 1), (3, 0)),
        (4, 3, 50, (3, 2, 1, 2), (5, 2, 1, 0)),
        (8, 6, 100, (3,) * 7, (12, 5, 2, 1, 1, 0, 0)),
        (3, 2, 5, (4, 3, 5), (3, 4, 5)),  # the whole vocabulary (minus the proposal at j < k)
    ],
)
def test_fork_matches_reference(b, k, v, fan_out, fan_out_miss):
    logits, proposals, hit = _case(b, k, v, seed=b + k + v)
    per_row = fan_out_rows(hit, fan_out, fan_out_miss)
    tokens, glue_index = fork(logits, proposals, per_row)
    want_tokens, want_index = fork_reference(logits, proposals, per_row)
    assert tokens.shape == (b, sum(fan_out))
    assert torch.equal(tokens, want_tokens) and torch.equal(glue_index, want_index)
    # The speculated token is never a candidate at its own position j < k.
    for j in range(k):
        at_j = glue_index == j
        assert not (tokens == proposals[:, j : j + 1])[at_j].any()


def test_rank_agrees_with_fork_membership():
    """rank <= F_j exactly when the token is among the F_j candidates at j (no ties in random logits)."""
    b, k, v = 16, 4, 30
    logits, proposals, _ = _case(b, k, v, seed=7)
    g = torch.Generator().manual_seed(8)
    for accepted in range(k + 1):
        acc = torch.full((b,), accepted)
        token = torch.randint(0, v, (b,), generator=g)
        if accepted < k:  # a bonus token is never the rejected proposal
            token = torch.where(token == proposals[:, accepted], (token + 1) % v, token)
        rank = candidate_rank(logits, proposals, acc, token)
        for f in (1, 3, 10):
            fan = torch.zeros((b, k + 1), dtype=torch.long)
            fan[:, accepted] = f
            cands, _ = fork(logits, proposals, fan)
            member = (cands == token[:, None]).any(dim=1)
            assert torch.equal(member, rank <= f)


def test_rank_ties_by_token_id():
    logits = torch.zeros((1, 2, 5))
    logits[0, 0, 3] = 1.0
    proposals = torch.tensor([[3]])
    # Position 0: token 3 (excluded) leads; the rest tie and rank by id.
    ranks = [
        int(candidate_rank(logits, proposals, torch.tensor([0]), torch.tensor([t])))
        for t in (0, 1, 2, 4)
    ]
    assert ranks == [1, 2, 3, 4]
    # Position k = 1: nothing excluded.
    assert int(candidate_rank(logits, proposals, torch.tensor([1]), torch.tensor([2]))) == 3


def test_bad_fan_outs_are_rejected():
    with pytest.raises(ValueError, match="equal length and sum"):
        fan_out_rows(torch.tensor([True]), (2, 1), (1, 1))
    logits, proposals, _ = _case(1, 1, 4, seed=0)
    with pytest.raises(ValueError, match="vocabulary of 4"):
        fork(logits, proposals, torch.tensor([[4, 0]]))
