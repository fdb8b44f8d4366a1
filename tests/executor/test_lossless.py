"""Greedy losslessness: SD output == AR output == transformers' generate on the same weights.

32 prompts of different lengths x 128 new tokens, at batch 1 and 4, with a draft equal to the
target (every proposal accepted) and a perturbed copy of it (accepts some, rejects others).
The oracle is ``generate(do_sample=False)`` of LlamaForCausalLM / Qwen3ForCausalLM, one prompt
at a time. The trace's per-step token ids must add up to the outputs.
"""

from __future__ import annotations

import pytest
import torch

from executor.engines.ar import AREngine
from executor.engines.common import Sampling, generate
from executor.engines.sd import SDEngine
from executor.model.decoder import Decoder
from tests.executor.helpers import load_hf, save_perturbed_copy, save_random_model

NUM_PROMPTS = 32
NEW_TOKENS = 128
VOCAB = 256


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lossless")
    target = save_random_model(root / "target", "llama", seed=11, init_std=0.3, vocab_size=VOCAB)
    return target, save_perturbed_copy(target, root / "draft", noise=0.03)


@pytest.fixture(scope="module")
def prompts():
    g = torch.Generator().manual_seed(12)
    lengths = torch.randint(2, 25, (NUM_PROMPTS,), generator=g)
    return [torch.randint(3, VOCAB, (int(n),), generator=g).tolist() for n in lengths]


def hf_greedy(model_dir, prompts, new_tokens, eos_token_id=None):
    hf = load_hf(model_dir)
    out = []
    with torch.inference_mode():
        for p in prompts:
            ids = hf.generate(
                torch.tensor([p]),
                max_new_tokens=new_tokens,
                do_sample=False,
                eos_token_id=eos_token_id,
                pad_token_id=0,
            )
            out.append(ids[0, len(p) :].tolist())
    return out


@pytest.fixture(scope="module")
def oracle(dirs, prompts):
    return hf_greedy(dirs[0], prompts, NEW_TOKENS)


@pytest.fixture(scope="module")
def models(dirs):
    return Decoder.from_dir(dirs[0]), Decoder.from_dir(dirs[1])


def _check_trace(result, prompts):
    """Per-step token ids of each sequence, after the prefill token, rebuild its output."""
    per_seq = {i: [] for i in range(len(prompts))}
    for step in result.steps:
        for o in step.seqs:
            per_seq[o.seq].extend(o.token_ids)
            assert len(o.token_ids) == o.emitted_tokens <= o.accepted_len + 1
    for i, out in enumerate(result.outputs):
        assert [out[0], *per_seq[i]] == out


@pytest.mark.parametrize("batch_size", [1, 4])
def test_ar_equals_generate(models, prompts, oracle, batch_size):
    result = generate(
        AREngine(models[0], Sampling()),
        prompts,
        batch_size=batch_size,
        max_new_tokens=NEW_TOKENS,
        sampling=Sampling(),
    )
    assert result.outputs == oracle
    _check_trace(result, prompts)


@pytest.mark.parametrize(
    ("draft", "k", "batch_size"),
    [("same", 4, 1), ("same", 6, 4), ("perturbed", 3, 1), ("perturbed", 5, 4)],
)
def test_sd_equals_generate(models, prompts, oracle, draft, k, batch_size):
    target, other = models
    engine = SDEngine(target, target if draft == "same" else other, Sampling(), k)
    result = generate(
        engine, prompts, batch_size=batch_size, max_new_tokens=NEW_TOKENS, sampling=Sampling()
    )
    assert result.outputs == oracle
    _check_trace(result, prompts)
    accepted = [o.accepted_len for s in result.steps for o in s.seqs]
    if draft == "same":
        assert min(accepted) == k
    else:  # both outcomes occur: the test exercises rejection and full acceptance
        assert min(accepted) == 0 and max(accepted) == k


def test_eos_stops_like_generate(dirs, models, prompts, oracle):
    """With ignore_eos off, every mode stops right after the EOS token, as generate does."""
    tail = [t for out in oracle[:8] for t in out[5:]]
    eos = max(set(tail), key=tail.count)  # a token that does occur mid-sequence
    want = hf_greedy(dirs[0], prompts[:8], 40, eos_token_id=eos)
    assert any(len(w) < 40 for w in want)
    target, draft = models
    for engine in (AREngine(target, Sampling()), SDEngine(target, draft, Sampling(), 4)):
        result = generate(
            engine,
            prompts[:8],
            batch_size=4,
            max_new_tokens=40,
            sampling=Sampling(),
            ignore_eos=False,
            eos_token_ids=[eos],
        )
        assert result.outputs == want


def test_qwen3_sd_equals_generate(tmp_path):
    target = save_random_model(tmp_path / "t", "qwen3", seed=13, init_std=0.3, vocab_size=VOCAB)
    draft = save_perturbed_copy(target, tmp_path / "d", noise=0.03)
    g = torch.Generator().manual_seed(14)
    prompts = [torch.randint(3, VOCAB, (int(n),), generator=g).tolist() for n in (3, 9, 17, 5)]
    want = hf_greedy(target, prompts, 48)
    engine = SDEngine(Decoder.from_dir(target), Decoder.from_dir(draft), Sampling(), 4)
    assert (
        generate(engine, prompts, batch_size=4, max_new_tokens=48, sampling=Sampling()).outputs
        == want
    )


def test_smoke_pair_sd_equals_generate(smoke_build, smoke_prompts):
    """The trained smoke pair and its prompt set: SD == AR == generate."""
    from ssdsim.workload import read_prompt_records

    prompts = [r["prompt_ids"] for r in read_prompt_records(str(smoke_prompts))]
    want = hf_greedy(smoke_build.target_dir, prompts, 32)
    target, draft = (
        Decoder.from_dir(smoke_build.target_dir),
        Decoder.from_dir(smoke_build.draft_dir),
    )
    for engine in (AREngine(target, Sampling()), SDEngine(target, draft, Sampling(), 3)):
        assert (
            generate(engine, prompts, batch_size=4, max_new_tokens=32, sampling=Sampling()).outputs
            == want
        )


@pytest.mark.parametrize("path", ["onednn", "linear"])
def test_sd_equals_generate_on_every_matrix_path(models, prompts, oracle, path):
    """The CPU kernel paths the embedded target takes at 4+ rows (oneDNN) or the previous rule
    (F.linear), forced on this small model: still exactly the oracle's greedy output."""
    from executor.model.matrix import set_cpu_kernels

    set_cpu_kernels(path)
    try:
        ar = generate(
            AREngine(models[0], Sampling()),
            prompts,
            batch_size=4,
            max_new_tokens=NEW_TOKENS,
            sampling=Sampling(),
        )
        sd = generate(
            SDEngine(models[0], models[1], Sampling(), 5),
            prompts,
            batch_size=4,
            max_new_tokens=NEW_TOKENS,
            sampling=Sampling(),
        )
    finally:
        set_cpu_kernels("auto")
    assert ar.outputs == oracle
    assert sd.outputs == oracle
