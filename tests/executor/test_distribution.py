"""Sampled losslessness: at T > 0 the SD output has exactly the target's distribution.

A tiny target (vocabulary 8) continues one prompt by 4 tokens, 20,000 times (one batch of
20,000 rows, seeded). The exact law of each output position is computed by enumerating all
8^4 continuations with transformers' model (an independent oracle). A chi-square test of the
per-position token frequencies must pass (p > 0.001 at every position) for AR and SD (plain,
Saguaro rescale C < 1 with a different draft temperature), and must fail for deliberately
broken verifiers: greedy acceptance at T > 0, and a q that is not the one the proposals were
sampled from.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy.stats import chisquare

from executor.engines.ar import AREngine
from executor.engines.common import Sampling, generate
from executor.engines.sd import SDEngine
from executor.model.decoder import Decoder
from kernels.sampling import probs_from_logits, sample
from kernels.verify import verify, verify_greedy
from tests.executor.helpers import load_hf, save_random_model

VOCAB = 8
NEW_TOKENS = 4
SAMPLES = 20_000
PROMPT = [1, 5, 3]
TEMPERATURE = 1.0
SMALL = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_attention_heads=2,
    num_key_value_heads=1,
)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    target = save_random_model(root / "t", "llama", seed=21, init_std=0.2, **SMALL)
    draft = save_random_model(
        root / "d", "llama", seed=22, init_std=0.2, num_hidden_layers=1, **SMALL
    )
    return target, draft


@pytest.fixture(scope="module")
def exact_marginals(dirs):
    """Law of each of the 4 output positions, by enumerating every continuation with transformers."""
    hf = load_hf(dirs[0])
    seqs = torch.tensor(list(itertools.product(range(VOCAB), repeat=NEW_TOKENS)))
    ids = torch.cat((torch.tensor(PROMPT).expand(len(seqs), -1), seqs), dim=1)
    with torch.inference_mode():
        logp = torch.log_softmax(hf(ids).logits.double() / TEMPERATURE, dim=-1)
    n = len(PROMPT)
    steps = logp[:, n - 1 : n - 1 + NEW_TOKENS].gather(-1, seqs[..., None])[..., 0]
    joint = steps.sum(dim=1).exp()
    return [
        torch.zeros(VOCAB, dtype=torch.float64).index_add_(0, seqs[:, i], joint)
        for i in range(NEW_TOKENS)
    ]


@pytest.fixture(scope="module")
def models(dirs):
    return Decoder.from_dir(dirs[0]), Decoder.from_dir(dirs[1])


def _p_values(engine, sampling, exact):
    result = generate(
        engine, [PROMPT] * SAMPLES, batch_size=SAMPLES, max_new_tokens=NEW_TOKENS, sampling=sampling
    )
    out = torch.tensor(result.outputs)
    p_values = []
    for i in range(NEW_TOKENS):
        counts = torch.bincount(out[:, i], minlength=VOCAB).double()
        expected = exact[i] / exact[i].sum() * SAMPLES
        p_values.append(float(chisquare(counts.numpy(), expected.numpy()).pvalue))
    return p_values, result


def _greedy_acceptance(proposals, target_logits, q, temperature, *, generator=None):
    """Broken: accept only the target's argmax, then sample the bonus from p."""
    accepted, _ = verify_greedy(proposals, target_logits)
    p = probs_from_logits(target_logits, temperature)
    return accepted, sample(p[torch.arange(len(accepted)), accepted], generator)


def _q_at_target_temperature(draft_temperature):
    """Broken: the draft samples at draft_temperature, the verifier assumes the target's temperature."""

    def verifier(proposals, target_logits, q, temperature, *, generator=None):
        wrong = q.pow(draft_temperature / TEMPERATURE)
        return verify(
            proposals,
            target_logits,
            wrong / wrong.sum(-1, keepdim=True),
            temperature,
            generator=generator,
        )

    return verifier


def test_ar_samples_follow_target(models, exact_marginals):
    p_values, _ = _p_values(
        AREngine(models[0], Sampling(temperature=TEMPERATURE, seed=1)),
        Sampling(temperature=TEMPERATURE, seed=1),
        exact_marginals,
    )
    assert min(p_values) > 1e-3, p_values


@pytest.mark.parametrize(
    ("k", "sampling"),
    [
        (2, Sampling(temperature=TEMPERATURE, seed=2)),
        (
            3,
            Sampling(
                temperature=TEMPERATURE, draft_temperature=0.6, rescale=0.4, rescale_top_n=3, seed=3
            ),
        ),
    ],
    ids=["plain", "rescaled_C0.4_draftT0.6"],
)
def test_sd_samples_follow_target(models, exact_marginals, k, sampling):
    p_values, result = _p_values(SDEngine(*models, sampling, k), sampling, exact_marginals)
    assert min(p_values) > 1e-3, p_values
    accepted = [o.accepted_len for s in result.steps for o in s.seqs]
    assert 0 < sum(accepted) / len(accepted) < k  # the draft differs: both accept and reject happen


@pytest.mark.parametrize("broken", ["greedy_acceptance", "q_at_wrong_temperature"])
def test_broken_verifiers_fail(models, exact_marginals, broken):
    sampling = Sampling(
        temperature=TEMPERATURE,
        draft_temperature=0.6 if broken != "greedy_acceptance" else None,
        seed=4,
    )
    verifier = (
        _greedy_acceptance if broken == "greedy_acceptance" else _q_at_target_temperature(0.6)
    )
    p_values, _ = _p_values(
        SDEngine(*models, sampling, 2, verifier=verifier), sampling, exact_marginals
    )
    assert min(p_values) < 1e-3, p_values
