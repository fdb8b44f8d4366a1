"""Build an embedded target/draft pair: corpus -> tokenizer -> target -> draft -> prompts -> checks.

Writes ``<cache>/zoo/<pair>/{target,draft}/`` (Hugging Face directories: config.json,
model.safetensors, tokenizer files) and ``summary.json``, and the recipe's prompt sets under
``<cache>/prompts/``. The pair is built in a ``.partial`` folder and renamed when complete, so
an interrupted build is never mistaken for a built one; a built pair is left alone unless
``force``. Imports torch, transformers, tokenizers and ssdsim.paths.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import transformers

from executor.zoo import evaluate, latency, prompts, train
from executor.zoo.corpus import Corpus, load_corpus
from executor.zoo.recipe import RECIPES, Recipe
from executor.zoo.tokenizer import encode_files, save_tokenizer, train_tokenizer
from ssdsim.paths import prompts_dir, zoo_dir

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class BuiltPair:
    """Where a built pair lives, and what its build measured."""

    name: str
    pair_dir: Path
    target_dir: Path
    draft_dir: Path
    prompt_files: dict[str, Path]
    summary: dict[str, Any]


def pair_dir(name: str) -> Path:
    return zoo_dir() / name


def read_built(name: str) -> BuiltPair | None:
    """The built pair ``name``, or None when it has not been (completely) built."""
    root = pair_dir(name)
    summary_path = root / SUMMARY_FILE
    if not summary_path.is_file():
        return None
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    files = {n: prompts_dir() / f"{n}.jsonl" for n in summary.get("prompt_sets", [])}
    return BuiltPair(name, root, root / "target", root / "draft", files, summary)


def build(size: str = "full", seed: int = 0, force: bool = False, threads: int = 2) -> BuiltPair:
    """Build (or find already built) the pair of recipe ``size`` ("full" or "smoke")."""
    if size not in RECIPES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(RECIPES)}")
    recipe = RECIPES[size]
    built = read_built(recipe.pair)
    if built is not None and not force:
        log.info(
            "pair %r already built at %s (use --force to rebuild)", recipe.pair, built.pair_dir
        )
        return built
    final = pair_dir(recipe.pair)
    work = final.with_name(f".{recipe.pair}.partial")
    shutil.rmtree(work, ignore_errors=True)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        summary = _build_into(work, recipe, seed, threads)
    finally:
        torch.set_num_threads(old_threads)
    shutil.rmtree(final, ignore_errors=True)
    work.replace(final)
    log.info("built pair %r at %s in %.0f s", recipe.pair, final, summary["build_s"])
    built = read_built(recipe.pair)
    assert built is not None  # just written
    return built


def _build_into(work: Path, recipe: Recipe, seed: int, threads: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    phase_s: dict[str, float] = {}

    def mark(name: str, since: float) -> float:
        now = time.perf_counter()
        phase_s[name] = round(now - since, 2)
        return now

    corpus = load_corpus(recipe.held_out_pct, recipe.max_files)
    log.info(
        "corpus: %d training files, %d held-out files", len(corpus.train), len(corpus.held_out)
    )
    tok = train_tokenizer([f.text for f in corpus.train], recipe.vocab_size)
    train_stream = torch.tensor(
        encode_files(tok, [f.text for f in corpus.train]), dtype=torch.int32
    )
    held_stream = torch.tensor(
        encode_files(tok, [f.text for f in corpus.held_out]), dtype=torch.int32
    )
    t = mark("tokenize_s", t0)

    eos = tok.eos_token_id
    target = train.make_model(recipe.target, len(tok), recipe.max_position_embeddings, eos, seed)
    train.run_phase(
        target, train_stream, recipe.target_train, seed + 1, "target", train.lm_loss(target)
    )
    t = mark("target_train_s", t)
    draft = train.make_model(recipe.draft, len(tok), recipe.max_position_embeddings, eos, seed + 2)
    train.run_phase(
        draft, train_stream, recipe.draft_train, seed + 3, "draft", train.lm_loss(draft)
    )
    t = mark("draft_train_s", t)
    loss = train.distill_loss(draft, target, recipe.distill_temperature)
    train.run_phase(draft, train_stream, recipe.draft_distill, seed + 4, "distill", loss)
    t = mark("draft_distill_s", t)

    target_dir, draft_dir = work / "target", work / "draft"
    target.save_pretrained(str(target_dir))
    draft.save_pretrained(str(draft_dir))
    save_tokenizer(tok, target_dir, draft_dir)
    prompt_sets = {
        s.name: prompts.make_prompts(corpus.held_out, s, tok) for s in recipe.prompt_sets
    }
    prompt_files = {
        n: prompts.write_prompt_set(n, ps, recipe.pair) for n, ps in prompt_sets.items()
    }
    t = mark("save_s", t)

    metrics = _measure(recipe, target, draft, held_stream, prompt_sets[recipe.eval.prompt_set], eos)
    mark("evaluate_s", t)
    summary = {
        **metrics,
        "build_s": round(time.perf_counter() - t0, 1),
        "phase_s": phase_s,
        "pair": recipe.pair,
        "seed": seed,
        "threads": threads,
        "target_params": train.count_params(target),
        "draft_params": train.count_params(draft),
        "corpus": _corpus_stats(corpus, train_stream, held_stream),
        "prompt_sets": sorted(prompt_files),
        "recipe": asdict(recipe),
        "versions": _versions(),
    }
    (work / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _measure(
    recipe: Recipe,
    target: torch.nn.Module,
    draft: torch.nn.Module,
    held_stream: torch.Tensor,
    eval_prompts: list[prompts.Prompt],
    eos: int,
) -> dict[str, Any]:
    plan = recipe.eval
    out = evaluate.teacher_forced(
        target, draft, held_stream, plan.held_out_tokens, recipe.target_train.seq_len
    )
    ids = [list(p.ids) for p in eval_prompts]
    conts = evaluate.greedy_continuations(
        target, ids, plan.continuation_tokens, plan.generate_batch, eos
    )
    refs = [list(p.reference_ids) for p in eval_prompts]
    out.update(evaluate.continuation_agreement(draft, ids, conts, refs))
    context = held_stream[: plan.latency_context_tokens].long()[None]
    out.update(latency.forward_latency(target, draft, context, plan.latency_reps))
    log.info("measured: %s", {k: round(v, 4) for k, v in out.items()})
    return out


def _corpus_stats(
    corpus: Corpus, train_stream: torch.Tensor, held_stream: torch.Tensor
) -> dict[str, Any]:
    return {
        "train_files": len(corpus.train),
        "held_out_files": len(corpus.held_out),
        "train_tokens": train_stream.numel(),
        "held_out_tokens": held_stream.numel(),
        "train_chars": corpus.train_chars,
    }


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
