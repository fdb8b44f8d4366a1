"""Sampling helpers: per-row temperatures, Saguaro's rescale, and inverse-CDF draws."""

from __future__ import annotations

import torch
from scipy.stats import chisquare

from kernels.sampling import (
    draft_distribution,
    probs_from_logits,
    rescale_probs,
    sample,
    sample_with_uniform,
)


def test_per_row_temperature():
    logits = torch.tensor([[1.0, 3.0, 2.0], [1.0, 3.0, 2.0], [0.5, 0.1, 0.2]])
    probs = probs_from_logits(logits, torch.tensor([0.0, 2.0, 0.0]))
    assert torch.equal(probs[0], torch.tensor([0.0, 1.0, 0.0]))
    assert torch.equal(probs[2], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(probs[1], torch.softmax(logits[1] / 2.0, dim=-1))
    # 3-d logits [B, k, V] with per-row temperatures broadcast over positions.
    probs3 = probs_from_logits(logits[None].expand(2, 3, 3), torch.tensor([0.0, 2.0]))
    assert torch.equal(probs3[0].argmax(-1), logits.argmax(-1)) and probs3[0].max() == 1.0


def test_rescale_scales_top_n_and_renormalises():
    q = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = rescale_probs(q, 0.5, 2)
    z = 1 - 0.5 * 0.8
    torch.testing.assert_close(out, torch.tensor([[0.25, 0.15, 0.15, 0.05]]) / z)
    # Greedy rows (one-hot) are unchanged.
    one_hot = draft_distribution(torch.tensor([[0.1, 2.0, 0.3]]), 0.0, rescale=0.2, top_n=2)
    assert torch.equal(one_hot, torch.tensor([[0.0, 1.0, 0.0]]))
    assert rescale_probs(q, 1.0, 2) is q


def test_sample_follows_weights():
    g = torch.Generator().manual_seed(0)
    weights = torch.tensor([0.0, 1.0, 2.0, 5.0, 0.5])  # unnormalised, with a zero
    draws = sample(weights.expand(50_000, 5), g)
    counts = torch.bincount(draws, minlength=5).double()
    assert counts[0] == 0
    w = weights[1:].double()
    expected = w / w.sum() * counts.sum()
    assert chisquare(counts[1:].numpy(), expected.numpy()).pvalue > 1e-3


def test_inverse_cdf_edges_never_draw_a_zero_weight():
    weights = torch.tensor([[0.0, 0.0, 3.0, 0.0, 1.0, 0.0]]).expand(4, 6)
    u = torch.tensor([0.0, 0.7499999, 0.75, 1.0 - 2.0**-53], dtype=torch.float64)
    assert sample_with_uniform(weights, u).tolist() == [2, 2, 4, 4]
    # leading dims are kept: [2, 3, V] weights with [2, 3] uniforms give [2, 3] indices
    w3 = torch.rand(2, 3, 7)
    assert sample_with_uniform(w3, torch.rand(2, 3, dtype=torch.float64)).shape == (2, 3)
