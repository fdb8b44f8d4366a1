"""executor.zoo: the smoke build's files load with transformers, its metrics are reproducible from
the saved models, builds are deterministic for a seed, prompt sets are readable by ssdsim."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import shutil

import pytest

pytest.importorskip("transformers")

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from executor.zoo import build, evaluate
from executor.zoo.__main__ import main
from executor.zoo.corpus import is_held_out, list_sources, load_corpus
from executor.zoo.recipe import FULL, SMOKE, Phase
from executor.zoo.train import lr_at
from ssdsim.workload import Workload, prompt_lengths, read_prompt_records

SUMMARY_KEYS = (
    "alpha_greedy",
    "alpha_outside_loops",
    "alpha_teacher_forced",
    "top5_coverage",
    "repeat_fraction",
    "latency_ratio",
    "latency_ratio_one_process",
    "latency_ratio_hf",
    "target_val_loss",
    "draft_val_loss",
    "build_s",
)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_smoke_build_writes_hf_directories_and_summary(smoke_build):
    for d in (smoke_build.target_dir, smoke_build.draft_dir):
        for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
            assert (d / name).is_file(), d / name
    on_disk = json.loads((smoke_build.pair_dir / "summary.json").read_text())
    assert on_disk == smoke_build.summary
    for key in SUMMARY_KEYS:
        assert isinstance(on_disk[key], float) and math.isfinite(on_disk[key]), key
    assert 0 <= on_disk["alpha_greedy"] <= on_disk["top5_coverage"] <= 1
    assert on_disk["target_params"] > on_disk["draft_params"]


def test_smoke_pair_loads_with_transformers(smoke_build, smoke_prompts):
    tok = AutoTokenizer.from_pretrained(smoke_build.target_dir)
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id is not None
    records = read_prompt_records(str(smoke_prompts))
    for rec in records:
        assert tok(rec["prompt"])["input_ids"] == rec["prompt_ids"]  # no special tokens added
        assert tok.decode(rec["prompt_ids"]) == rec["prompt"]
    for d in (smoke_build.target_dir, smoke_build.draft_dir):
        model = AutoModelForCausalLM.from_pretrained(d)
        assert type(model).__name__ == "LlamaForCausalLM"
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([records[0]["prompt_ids"]])).logits
        assert logits.shape == (1, len(records[0]["prompt_ids"]), model.config.vocab_size)


def test_summary_metrics_recomputed_from_saved_models(smoke_build, smoke_prompts):
    """The saved weights are the evaluated ones: agreement recomputed from disk matches summary.json."""
    target = AutoModelForCausalLM.from_pretrained(smoke_build.target_dir).eval()
    draft = AutoModelForCausalLM.from_pretrained(smoke_build.draft_dir).eval()
    ids = [r["prompt_ids"] for r in read_prompt_records(str(smoke_prompts))]
    plan = SMOKE.eval
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the build, so float sums round alike
    try:
        conts = evaluate.greedy_continuations(
            target, ids, plan.continuation_tokens, plan.generate_batch, 0
        )
        got = evaluate.continuation_agreement(draft, ids, conts)
    finally:
        torch.set_num_threads(threads)
    for key in ("alpha_greedy", "top5_coverage", "repeat_fraction"):
        assert got[key] == pytest.approx(smoke_build.summary[key], abs=1e-9), key


def test_build_is_deterministic_for_a_seed_and_force_rebuilds(smoke_build, tmp_path, monkeypatch):
    monkeypatch.setenv("SSDSIM_CACHE", str(tmp_path))
    again = build("smoke", seed=0, threads=1)
    for name in ("target", "draft"):
        for f in ("model.safetensors", "tokenizer.json"):
            assert _sha(again.pair_dir / name / f) == _sha(smoke_build.pair_dir / name / f), (
                name,
                f,
            )
    assert _sha(again.prompt_files["smoke8"]) == _sha(smoke_build.prompt_files["smoke8"])
    other = build("smoke", seed=1, force=True, threads=1)
    assert _sha(other.target_dir / "model.safetensors") != _sha(
        smoke_build.target_dir / "model.safetensors"
    )
    assert other.summary["seed"] == 1


def test_built_pair_is_not_rebuilt(smoke_cache, smoke_build, capsys):
    summary = smoke_build.pair_dir / "summary.json"
    before = summary.stat().st_mtime_ns
    assert main(["build", "--size", "smoke"]) == 0
    assert summary.stat().st_mtime_ns == before
    out = capsys.readouterr().out
    assert str(smoke_build.pair_dir) in out and "smoke8" in out


def test_latency_remeasure_updates_only_latency(tmp_path, smoke_build, monkeypatch, capsys):
    cache = tmp_path / "cache"
    shutil.copytree(smoke_build.pair_dir.parent.parent, cache)  # leave the shared build alone
    monkeypatch.setenv("SSDSIM_CACHE", str(cache))
    summary_path = cache / "zoo" / "smoke" / "summary.json"
    before = json.loads(summary_path.read_text())
    assert main(["latency", "--size", "smoke"]) == 0
    after = json.loads(summary_path.read_text())
    assert "latency_remeasured" in after and "latency_ratio" in capsys.readouterr().out
    for key, value in before.items():
        if "token_s" not in key and "latency" not in key:
            assert after[key] == value, key
    for key in ("latency_ratio", "latency_ratio_one_process", "latency_ratio_hf"):
        assert after[key] > 0 and math.isfinite(after[key])
        assert after[key] == pytest.approx(
            after[key.replace("latency_ratio", "target_token_s")]
            / after[key.replace("latency_ratio", "draft_token_s")]
        )


def test_prompt_sets_are_readable_by_ssdsim(smoke_cache):
    spec = SMOKE.prompt_sets[0]
    workload = Workload(prompts=spec.name)
    records = read_prompt_records(spec.name)
    assert len(records) == spec.count
    assert all(r["pair"] == "smoke" for r in records)
    lengths = prompt_lengths(workload)
    assert lengths is not None and all(spec.min_tokens <= n <= spec.max_tokens for n in lengths)
    for rec in records:
        assert re.match(r"\s*(async\s+def|def|class)\s", rec["prompt"]), rec["prompt"][:40]
        assert not rec["prompt"].endswith("\n")


def test_corpus_leaves_out_tests_and_site_packages():
    names = [p.as_posix() for p in list_sources()]
    assert names and all(n.endswith(".py") for n in names)
    banned = {"test", "tests", "idle_test", "site-packages", "encodings", "pydoc_data"}
    assert not any(banned & set(n.split("/")) for n in names)
    corpus = load_corpus(FULL.held_out_pct, max_files=40)
    assert {f.name for f in corpus.held_out} == {
        f.name for f in corpus.train + corpus.held_out if is_held_out(f.name, FULL.held_out_pct)
    }


def test_loop_mask_marks_positions_inside_repeated_4grams():
    seq = [1, 2, 3, 4, 9, 1, 2, 3, 4, 8]
    # positions 5..9: the 4-gram 1 2 3 4 repeats at 5..8; position 9 (8) is new
    assert evaluate.loop_mask(seq, 5) == [True, True, True, True, False]
    assert evaluate.loop_mask([5, 6, 7, 8, 9], 0) == [False] * 5


def test_lr_schedule_warms_up_then_decays_to_floor():
    phase = Phase(steps=100, batch_size=1, seq_len=8, lr=1.0, warmup_steps=10, min_lr_frac=0.1)
    assert lr_at(phase, 0) == pytest.approx(0.1)
    assert lr_at(phase, 9) == pytest.approx(1.0)
    assert lr_at(phase, 100) == pytest.approx(0.1)
    lrs = [lr_at(phase, s) for s in range(10, 101)]
    assert all(a >= b for a, b in itertools.pairwise(lrs))
