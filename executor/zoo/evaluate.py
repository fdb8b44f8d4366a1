"""How well a built pair serves speculative decoding: agreement, coverage, loops, held-out loss.

- Teacher-forced on held-out text: each model's loss, and how often the draft's argmax equals
  the target's (``alpha_teacher_forced``).
- On the target's own greedy continuations of held-out prompts (what speculative decoding
  sees): how often the draft's argmax is the target's token (``alpha_greedy``) and how often the
  target's token is in the draft's top 5 (``top5_coverage``). A continuation position is "in a
  loop" when a 4-gram covering it already occurred earlier in prompt + continuation;
  ``repeat_fraction`` is the share of such positions and ``alpha_outside_loops`` the agreement
  on the others. ``repeat_fraction_reference`` is the same measure on the real text that follows
  the prompts, for scale (code repeats itself too).
Imports torch and transformers (as the numerical reference); nothing from executor's runtime.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import GenerationConfig

LOOP_NGRAM = 4
TOP_K = 5


def loop_mask(seq: Sequence[int], start: int, n: int = LOOP_NGRAM) -> list[bool]:
    """For positions ``start..len(seq)-1``: is the position inside an n-gram seen earlier in ``seq``?"""
    first_seen: dict[tuple[int, ...], int] = {}
    repeated_at: list[bool] = []  # repeated_at[j]: the n-gram starting at j occurred before j
    for j in range(len(seq) - n + 1):
        gram = tuple(seq[j : j + n])
        repeated_at.append(gram in first_seen)
        first_seen.setdefault(gram, j)
    out = []
    for i in range(start, len(seq)):
        lo, hi = max(0, i - n + 1), min(i, len(repeated_at) - 1)
        out.append(any(repeated_at[j] for j in range(lo, hi + 1)))
    return out


@torch.no_grad()
def teacher_forced(
    target: torch.nn.Module,
    draft: torch.nn.Module,
    stream: torch.Tensor,
    n_tokens: int,
    seq_len: int,
) -> dict[str, float]:
    """Held-out loss of both models and their argmax agreement, on evenly spaced windows."""
    n_windows = max(1, min(n_tokens // seq_len, (stream.numel() - 1) // (seq_len + 1)))
    step = (stream.numel() - seq_len - 1) // n_windows
    sums = {"target": 0.0, "draft": 0.0, "agree": 0.0}
    count = 0
    for w in range(n_windows):
        window = stream[w * step : w * step + seq_len + 1].long()[None]
        x, y = window[:, :-1], window[:, 1:].flatten()
        t_logits = target(input_ids=x).logits[0]
        d_logits = draft(input_ids=x).logits[0]
        sums["target"] += F.cross_entropy(t_logits, y, reduction="sum").item()
        sums["draft"] += F.cross_entropy(d_logits, y, reduction="sum").item()
        sums["agree"] += (t_logits.argmax(-1) == d_logits.argmax(-1)).sum().item()
        count += y.numel()
    return {
        "target_val_loss": sums["target"] / count,
        "draft_val_loss": sums["draft"] / count,
        "alpha_teacher_forced": sums["agree"] / count,
        "teacher_forced_tokens": count,
    }


@torch.no_grad()
def greedy_continuations(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    new_tokens: int,
    batch: int,
    pad_id: int,
) -> list[list[int]]:
    """The model's greedy continuation of each prompt (Hugging Face generate, left padding, no eos stop)."""
    config = GenerationConfig(
        do_sample=False, max_new_tokens=new_tokens, eos_token_id=None, pad_token_id=pad_id
    )
    out: list[list[int]] = []
    for b in range(0, len(prompts), batch):
        chunk = prompts[b : b + batch]
        width = max(len(p) for p in chunk)
        ids = torch.tensor([[pad_id] * (width - len(p)) + list(p) for p in chunk])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
        gen = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        out.extend(gen[:, width:].tolist())
    return out


@torch.no_grad()
def _draft_ranks_ok(
    draft: torch.nn.Module, seq: list[int], start: int
) -> tuple[list[bool], list[bool]]:
    """For each token seq[start:]: is it the draft's argmax, and is it in the draft's top-k?"""
    logits = draft(input_ids=torch.tensor([seq[:-1]])).logits[0, start - 1 :]
    want = torch.tensor(seq[start:])
    top = logits.topk(TOP_K, dim=-1).indices
    return (top[:, 0] == want).tolist(), (top == want[:, None]).any(-1).tolist()


def continuation_agreement(
    draft: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    references: Sequence[Sequence[int]] = (),
) -> dict[str, float]:
    """Agreement of the draft with the target's tokens on prompt + continuation (see module doc)."""
    top1: list[bool] = []
    top5: list[bool] = []
    loops: list[bool] = []
    for prompt, cont in zip(prompts, continuations, strict=True):
        seq = list(prompt) + list(cont)
        a, c = _draft_ranks_ok(draft, seq, len(prompt))
        top1 += a
        top5 += c
        loops += loop_mask(seq, len(prompt))
    outside = [a for a, in_loop in zip(top1, loops, strict=True) if not in_loop]
    ref_loops = [
        x
        for p, r in zip(prompts[: len(references)], references, strict=True)
        for x in loop_mask(list(p) + list(r), len(p))
    ]
    return {
        "alpha_greedy": sum(top1) / len(top1),
        "top5_coverage": sum(top5) / len(top5),
        "repeat_fraction": sum(loops) / len(loops),
        "alpha_outside_loops": sum(outside) / len(outside) if outside else float("nan"),
        "repeat_fraction_reference": sum(ref_loops) / len(ref_loops) if ref_loops else float("nan"),
        "continuation_positions": len(top1),
    }


def ngram_baselines(train: torch.Tensor, held: torch.Tensor, vocab_size: int) -> dict[str, float]:
    """Held-out loss of count-based unigram and bigram models (add-0.5 / add-0.1 smoothing), for scale."""
    train, held = train.long(), held.long()
    uni = torch.bincount(train, minlength=vocab_size).double() + 0.5
    uni_loss = -(uni / uni.sum()).log()[held].mean().item()
    pairs = torch.bincount(train[:-1] * vocab_size + train[1:], minlength=vocab_size * vocab_size)
    bi = pairs.double().view(vocab_size, vocab_size) + 0.1
    bi_logp = (bi / bi.sum(1, keepdim=True)).log()
    return {
        "unigram_val_loss": uni_loss,
        "bigram_val_loss": -bi_logp[held[:-1], held[1:]].mean().item(),
    }
