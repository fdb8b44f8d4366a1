"""Our decoder against transformers (the numerical oracle) and against itself across code paths.

* Logits equal LlamaForCausalLM / Qwen3ForCausalLM on the same random weights within 1e-4 in
  float32 (GQA, Llama-3 rope scaling, qk-norm, explicit head_dim, tied and untied embeddings,
  attention biases), for a right-padded batch of prompts of different lengths and for
  incremental decoding at per-row positions.
* bfloat16 (the CUDA dtype): logits within 3% of the logit range of transformers' float32
  logits. Measured: 0.025-0.037 max abs on a range of ~5, the same as transformers' own bf16
  model (0.023-0.038), i.e. bf16 rounding only.
* ``rows`` (a subset of cache rows), rollback by overwriting, and ``forward_branches`` (kernel 3)
  against each branch's full context run through the normal forward.
"""

from __future__ import annotations

import pytest
import torch

from executor.model.decoder import Decoder
from tests.executor.helpers import load_hf, save_random_model

VARIANTS = {
    "llama_gqa_llama3rope_tied": ("llama", {}),
    "llama_mha_untied_bias": (
        "llama",
        dict(
            num_key_value_heads=4, tie_word_embeddings=False, rope_scaling=None, attention_bias=True
        ),
    ),
    "qwen3_gqa_headdim": ("qwen3", {}),
    "qwen3_tied_mqa": ("qwen3", dict(num_key_value_heads=1, tie_word_embeddings=True)),
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def pair(request, tmp_path_factory):
    family, overrides = VARIANTS[request.param]
    path = save_random_model(
        tmp_path_factory.mktemp(request.param), family, seed=3, init_std=0.1, **overrides
    )
    return load_hf(path), Decoder.from_dir(path), path


def _prompts(lengths, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (n,), generator=g) for n in lengths]


def _hf_logits(hf, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return hf(ids[None]).logits[0]


def test_logits_match_transformers(pair):
    hf, ours, _ = pair
    prompts = _prompts([9, 3, 14], ours.config.vocab_size, seed=1)
    cache = ours.new_cache(3, 32)
    padded = torch.zeros((3, 14), dtype=torch.long)
    for i, p in enumerate(prompts):
        padded[i, : len(p)] = p
    with torch.inference_mode():
        got = ours.forward(padded, torch.zeros(3, dtype=torch.long), cache)
    for i, p in enumerate(prompts):
        torch.testing.assert_close(got[i, : len(p)], _hf_logits(hf, p), atol=1e-4, rtol=0)


def test_incremental_decode_at_per_row_positions(pair):
    """Rows at different lengths advance together, 1 and 3 tokens at a time, and match full forwards."""
    hf, ours, _ = pair
    full = _prompts([12, 20], ours.config.vocab_size, seed=2)
    cache = ours.new_cache(2, 32)
    with torch.inference_mode():
        for i, (row, n) in enumerate(zip(full, (5, 9), strict=True)):
            ours.forward(
                row[None, :n], torch.zeros(1, dtype=torch.long), cache, rows=torch.tensor([i])
            )
        pos = torch.tensor([5, 9])
        for width in (1, 3, 1, 2):
            tokens = torch.stack([full[i][int(pos[i]) : int(pos[i]) + width] for i in range(2)])
            got = ours.forward(tokens, pos, cache)
            for i in range(2):
                want = _hf_logits(hf, full[i][: int(pos[i]) + width])[-width:]
                torch.testing.assert_close(got[i], want, atol=1e-4, rtol=0)
            pos = pos + width


def test_rollback_is_overwrite(pair):
    """Writing junk past a row's length and then decoding from there gives the clean result."""
    _, ours, _ = pair
    ids = _prompts([10], ours.config.vocab_size, seed=4)[0][None]
    junk = _prompts([4], ours.config.vocab_size, seed=5)[0][None]
    clean, dirty = ours.new_cache(1, 16), ours.new_cache(1, 16)
    with torch.inference_mode():
        want = ours.forward(ids, torch.tensor([0]), clean)
        ours.forward(ids[:, :6], torch.tensor([0]), dirty)
        ours.forward(junk, torch.tensor([6]), dirty)  # rejected proposals, say
        got = ours.forward(ids[:, 6:], torch.tensor([6]), dirty)
    torch.testing.assert_close(got, want[:, 6:], atol=1e-5, rtol=0)


def test_forward_on_a_subset_of_rows(pair):
    _, ours, _ = pair
    prompts = _prompts([6, 6, 6], ours.config.vocab_size, seed=6)
    cache = ours.new_cache(3, 16)
    with torch.inference_mode():
        ours.forward(torch.stack(prompts), torch.zeros(3, dtype=torch.long), cache)
        nxt = torch.tensor([[7], [8]])
        got = ours.forward(
            nxt, torch.tensor([6, 6]), cache, rows=torch.tensor([2, 0]), logits_at=-1
        )
        whole = ours.forward(
            torch.tensor([[8], [0], [7]]), torch.tensor([6, 6, 6]), cache, logits_at=-1
        )
    torch.testing.assert_close(got, whole[[2, 0]], atol=1e-5, rtol=0)


def test_forward_branches_matches_full_context(pair):
    """B=2 sequences x M=3 branches, depth 3: each branch equals its whole context through forward()."""
    _, ours, _ = pair
    v, m, depth = ours.config.vocab_size, 3, 3
    trunks = _prompts([11, 7], v, seed=7)
    trunk_len = torch.tensor([11, 9, 4, 7, 2, 6])  # per branch, at most its sequence's length
    chains = torch.randint(0, v, (2 * m, depth), generator=torch.Generator().manual_seed(8))
    cache = ours.new_cache(2, 16)
    scratch = ours.new_scratch(2 * m, depth)
    with torch.inference_mode():
        for i, t in enumerate(trunks):
            ours.forward(t[None], torch.zeros(1, dtype=torch.long), cache, rows=torch.tensor([i]))
        for d in range(depth):
            got = ours.forward_branches(chains[:, d], cache, trunk_len, scratch, d)
            for r in range(2 * m):
                context = torch.cat((trunks[r // m][: int(trunk_len[r])], chains[r, : d + 1]))
                fresh = ours.new_cache(1, 16)
                want = ours.forward(
                    context[None], torch.zeros(1, dtype=torch.long), fresh, logits_at=-1
                )[0]
                torch.testing.assert_close(got[r], want, atol=1e-4, rtol=0)


def test_bfloat16_close_to_float32_oracle(pair):
    hf, _, path = pair
    ours = Decoder.from_dir(path, dtype=torch.bfloat16)
    ids = _prompts([16], ours.config.vocab_size, seed=9)[0]
    with torch.inference_mode():
        got = ours.forward(ids[None], torch.zeros(1, dtype=torch.long), ours.new_cache(1, 16))[
            0
        ].float()
    want = _hf_logits(hf, ids)
    assert (got - want).abs().max() <= 0.03 * (want.max() - want.min())


def _pair_dirs(request, name):
    """Target and draft dirs of the smoke pair (built by the session fixture) or the embedded pair."""
    if name == "smoke":
        build = request.getfixturevalue("smoke_build")
        return build.target_dir, build.draft_dir
    from executor.loader import PairError, resolve_pair

    try:
        pair = resolve_pair("embedded")
    except PairError as exc:
        pytest.skip(f"embedded pair not built: {exc}")
    return pair.target_dir, pair.draft_dir


@pytest.mark.parametrize("name", ["smoke", "embedded"])
def test_trained_pair_logits_match_transformers(request, name):
    for model_dir in _pair_dirs(request, name):
        hf, ours = load_hf(model_dir), Decoder.from_dir(model_dir)
        ids = _prompts([40], ours.config.vocab_size, seed=10)[0]
        with torch.inference_mode():
            got = ours.forward(ids[None], torch.zeros(1, dtype=torch.long), ours.new_cache(1, 40))[
                0
            ]
        torch.testing.assert_close(got, _hf_logits(hf, ids), atol=1e-4, rtol=0)
