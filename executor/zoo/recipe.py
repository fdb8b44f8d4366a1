"""Recipes of the embedded pairs: model shapes, training phases, evaluation and prompt sets.

``RECIPES["full"]`` builds the ``embedded`` pair (about 20 minutes on 2 CPU cores);
``RECIPES["smoke"]`` builds the tiny ``smoke`` pair in seconds through the same code, for tests.
Step counts are fixed (not time budgets), so a build is deterministic for a seed. Imports only
the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelShape:
    """A Llama decoder's shape (head_dim = hidden_size / num_heads)."""

    hidden_size: int
    num_layers: int
    intermediate_size: int
    num_heads: int


@dataclass(frozen=True)
class Phase:
    """One training phase: AdamW, linear warmup then cosine decay to ``min_lr_frac * lr``."""

    steps: int
    batch_size: int
    seq_len: int
    lr: float
    warmup_steps: int
    min_lr_frac: float = 0.1
    weight_decay: float = 0.1


@dataclass(frozen=True)
class PromptSet:
    """``count`` prompts of ``min_tokens``..``max_tokens`` tokens cut from held-out files."""

    name: str
    count: int
    min_tokens: int
    max_tokens: int


@dataclass(frozen=True)
class EvalPlan:
    """What the build measures: held-out tokens teacher-forced, greedy continuations, latency."""

    held_out_tokens: int  # teacher-forced loss and agreement on this many held-out tokens
    prompt_set: str  # continuations start from this prompt set
    continuation_tokens: int  # target greedy tokens generated per prompt
    generate_batch: int
    latency_context_tokens: int
    latency_reps: int


@dataclass(frozen=True)
class Recipe:
    pair: str
    vocab_size: int
    held_out_pct: int
    max_files: int | None  # None: the whole corpus
    target: ModelShape
    draft: ModelShape
    target_train: Phase
    draft_train: Phase  # the draft's own language-model training on data
    draft_distill: Phase  # then distillation from the target's distributions
    distill_temperature: float
    eval: EvalPlan
    prompt_sets: tuple[PromptSet, ...] = field(default_factory=tuple)
    max_position_embeddings: int = 2048
    code_only: bool = True  # strip comments and docstrings (see corpus.strip_comments)
    bigram_init: bool = True  # start both models as low-rank bigram models (see train.bigram_init)


FULL = Recipe(
    pair="embedded",
    vocab_size=4096,
    held_out_pct=10,
    max_files=None,
    target=ModelShape(hidden_size=384, num_layers=6, intermediate_size=1024, num_heads=6),
    draft=ModelShape(hidden_size=128, num_layers=2, intermediate_size=344, num_heads=2),
    target_train=Phase(steps=270, batch_size=4, seq_len=512, lr=3e-3, warmup_steps=20),
    draft_train=Phase(steps=200, batch_size=8, seq_len=512, lr=3e-3, warmup_steps=20),
    draft_distill=Phase(steps=60, batch_size=8, seq_len=512, lr=1e-3, warmup_steps=6),
    distill_temperature=1.0,
    eval=EvalPlan(
        held_out_tokens=32768,
        prompt_set="code64",
        continuation_tokens=256,
        generate_batch=16,
        latency_context_tokens=256,
        latency_reps=200,
    ),
    prompt_sets=(PromptSet("code64", 64, 64, 256), PromptSet("code8", 8, 64, 256)),
)

SMOKE = Recipe(
    pair="smoke",
    vocab_size=512,
    held_out_pct=25,
    max_files=24,
    target=ModelShape(hidden_size=64, num_layers=2, intermediate_size=128, num_heads=2),
    draft=ModelShape(hidden_size=64, num_layers=1, intermediate_size=128, num_heads=2),
    target_train=Phase(steps=80, batch_size=4, seq_len=64, lr=1e-2, warmup_steps=5),
    draft_train=Phase(steps=60, batch_size=4, seq_len=64, lr=1e-2, warmup_steps=5),
    draft_distill=Phase(steps=30, batch_size=4, seq_len=64, lr=3e-3, warmup_steps=2),
    distill_temperature=1.0,
    eval=EvalPlan(
        held_out_tokens=1024,
        prompt_set="smoke8",
        continuation_tokens=16,
        generate_batch=8,
        latency_context_tokens=32,
        latency_reps=10,
    ),
    prompt_sets=(PromptSet("smoke8", 8, 16, 48),),
    max_position_embeddings=256,
)

RECIPES: dict[str, Recipe] = {"full": FULL, "smoke": SMOKE}
