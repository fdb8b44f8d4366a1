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
from executor.zoo.corpus import Corpus, load_corpus, read_sources
from executor.zoo.recipe import RECIPES, ModelShape, Recipe
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


def remeasure_latency(size: str = "full") -> BuiltPair:
    """Measure the built pair's forward latencies again and update its summary.json.

    For a pair built before the latency measurement changed, or on a quieter machine. The
    context is the first held-out tokens, as in the build; ``latency_remeasured`` records when.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if size not in RECIPES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(RECIPES)}")
    recipe = RECIPES[size]
    built = read_built(recipe.pair)
    if built is None:
        raise FileNotFoundError(
            f"pair {recipe.pair!r} is not built at {pair_dir(recipe.pair)}: run "
            f"python -m executor.zoo build --size {size}"
        )
    tok = AutoTokenizer.from_pretrained(str(built.target_dir))
    corpus = load_corpus(recipe.held_out_pct, recipe.max_files, code_only=recipe.code_only)
    n = recipe.eval.latency_context_tokens
    held = encode_files(tok, [f.text for f in corpus.held_out])[:n]
    context = torch.tensor([held], dtype=torch.long)
    target = AutoModelForCausalLM.from_pretrained(str(built.target_dir)).eval()
    draft = AutoModelForCausalLM.from_pretrained(str(built.draft_dir)).eval()
    measured = latency.forward_latency(
        target, draft, built.target_dir, built.draft_dir, context, recipe.eval.latency_reps
    )
    summary = {
        **built.summary,
        **measured,
        "latency_remeasured": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (built.pair_dir / SUMMARY_FILE).write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )
    log.info("latency of pair %r: %s", recipe.pair, json.dumps(measured))
    return read_built(recipe.pair) or built


class _Stopwatch:
    """Seconds per named phase of a build."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.phase_s: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phase_s[name] = round(now - self.last, 2)
        self.last = now

    def total_s(self) -> float:
        return round(time.perf_counter() - self.start, 1)


@dataclass(frozen=True)
class _Data:
    corpus: Corpus
    tokenizer: Any
    train_stream: torch.Tensor
    held_stream: torch.Tensor
    raw_held_stream: torch.Tensor  # held-out files with their comments and docstrings


def _prepare(recipe: Recipe) -> _Data:
    corpus = load_corpus(recipe.held_out_pct, recipe.max_files, code_only=recipe.code_only)
    log.info(
        "corpus: %d training files, %d held-out files", len(corpus.train), len(corpus.held_out)
    )
    tok = train_tokenizer([f.text for f in corpus.train], recipe.vocab_size)

    def stream(texts: list[str]) -> torch.Tensor:
        return torch.tensor(encode_files(tok, texts), dtype=torch.int32)

    raw = read_sources([f.name for f in corpus.held_out])
    return _Data(
        corpus,
        tok,
        stream([f.text for f in corpus.train]),
        stream([f.text for f in corpus.held_out]),
        stream([f.text for f in raw]),
    )


def _new_model(recipe: Recipe, shape: ModelShape, data: _Data, seed: int) -> Any:
    tok = data.tokenizer
    untied = recipe.bigram_init  # the bigram factorisation needs separate input/output tables
    model = train.make_model(
        shape, len(tok), recipe.max_position_embeddings, tok.eos_token_id, seed, tied=not untied
    )
    if recipe.bigram_init:
        train.bigram_init(model, data.train_stream, seed)
    return model


def _train_pair(recipe: Recipe, data: _Data, seed: int, watch: _Stopwatch) -> tuple[Any, Any]:
    """The target on data; then the draft on data, then distilled from the target."""
    target = _new_model(recipe, recipe.target, data, seed)
    train.run_phase(
        target, data.train_stream, recipe.target_train, seed + 1, "target", train.lm_loss(target)
    )
    watch.lap("target_train_s")
    draft = _new_model(recipe, recipe.draft, data, seed + 2)
    train.run_phase(
        draft, data.train_stream, recipe.draft_train, seed + 3, "draft", train.lm_loss(draft)
    )
    watch.lap("draft_train_s")
    loss = train.distill_loss(draft, target, recipe.distill_temperature)
    train.run_phase(draft, data.train_stream, recipe.draft_distill, seed + 4, "distill", loss)
    watch.lap("draft_distill_s")
    return target, draft


def _build_into(work: Path, recipe: Recipe, seed: int, threads: int) -> dict[str, Any]:
    watch = _Stopwatch()
    data = _prepare(recipe)
    watch.lap("tokenize_s")
    target, draft = _train_pair(recipe, data, seed, watch)
    target.save_pretrained(str(work / "target"))
    draft.save_pretrained(str(work / "draft"))
    save_tokenizer(data.tokenizer, work / "target", work / "draft")
    prompt_sets = {
        s.name: prompts.make_prompts(data.corpus.held_out, s, data.tokenizer)
        for s in recipe.prompt_sets
    }
    for name, records in prompt_sets.items():
        prompts.write_prompt_set(name, records, recipe.pair)
    watch.lap("save_s")
    metrics = _measure(recipe, target, draft, data, prompt_sets[recipe.eval.prompt_set], work)
    watch.lap("evaluate_s")
    summary = {
        **metrics,
        "build_s": watch.total_s(),
        "phase_s": watch.phase_s,
        "pair": recipe.pair,
        "seed": seed,
        "threads": threads,
        "target_params": train.count_params(target),
        "draft_params": train.count_params(draft),
        "corpus": _corpus_stats(data),
        "prompt_sets": sorted(prompt_sets),
        "recipe": asdict(recipe),
        "versions": _versions(),
    }
    (work / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _measure(
    recipe: Recipe,
    target: Any,
    draft: Any,
    data: _Data,
    eval_prompts: list[prompts.Prompt],
    work: Path,
) -> dict[str, Any]:
    plan, seq_len = recipe.eval, recipe.target_train.seq_len
    out: dict[str, Any] = evaluate.teacher_forced(
        target, draft, data.held_stream, plan.held_out_tokens, seq_len
    )
    raw = evaluate.teacher_forced(
        target, draft, data.raw_held_stream, plan.held_out_tokens // 2, seq_len
    )
    out["with_comments"] = {k: v for k, v in raw.items() if k != "teacher_forced_tokens"}
    out["baselines"] = evaluate.ngram_baselines(
        data.train_stream, data.held_stream, len(data.tokenizer)
    )
    ids = [list(p.ids) for p in eval_prompts]
    eos = data.tokenizer.eos_token_id
    conts = evaluate.greedy_continuations(
        target, ids, plan.continuation_tokens, plan.generate_batch, eos
    )
    refs = [list(p.reference_ids) for p in eval_prompts]
    out.update(evaluate.continuation_agreement(draft, ids, conts, refs))
    context = data.held_stream[: plan.latency_context_tokens].long()[None]
    out.update(
        latency.forward_latency(
            target, draft, work / "target", work / "draft", context, plan.latency_reps
        )
    )
    target_macs = latency.decode_macs(target.config, plan.latency_context_tokens)
    draft_macs = latency.decode_macs(draft.config, plan.latency_context_tokens)
    out.update(
        target_decode_macs=target_macs,
        draft_decode_macs=draft_macs,
        macs_ratio=target_macs / draft_macs,
    )
    log.info("measured: %s", json.dumps(out))
    return out


def _corpus_stats(data: _Data) -> dict[str, Any]:
    return {
        "train_files": len(data.corpus.train),
        "held_out_files": len(data.corpus.held_out),
        "train_tokens": data.train_stream.numel(),
        "held_out_tokens": data.held_stream.numel(),
        "train_chars": data.corpus.train_chars,
    }


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
