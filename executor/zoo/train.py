"""Training of the embedded pair: language-model training on a token stream, then distillation.

Models are transformers' ``LlamaForCausalLM``. Batches are windows of the packed token stream
(files joined by eos) at offsets drawn from a seeded generator, so a phase is deterministic
for its seed and thread count. Imports torch and transformers; nothing from executor's runtime.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import LlamaConfig, LlamaForCausalLM

from executor.zoo.recipe import ModelShape, Phase

log = logging.getLogger(__name__)


def make_model(
    shape: ModelShape,
    vocab_size: int,
    max_positions: int,
    eos_id: int,
    seed: int,
    tied: bool = True,
) -> LlamaForCausalLM:
    """A freshly initialised Llama (input and output embeddings tied unless ``tied`` is False)."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=tied,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def lr_at(phase: Phase, step: int) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``min_lr_frac * lr`` at the last step."""
    if step < phase.warmup_steps:
        return phase.lr * (step + 1) / phase.warmup_steps
    span = max(1, phase.steps - phase.warmup_steps)
    progress = min(1.0, (step - phase.warmup_steps) / span)
    floor = phase.lr * phase.min_lr_frac
    return floor + (phase.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def sample_windows(stream: torch.Tensor, phase: Phase, gen: torch.Generator) -> torch.Tensor:
    """``batch_size`` windows of ``seq_len + 1`` tokens at random offsets: (B, T+1) int64."""
    high = stream.numel() - phase.seq_len - 1
    if high <= 0:
        raise ValueError(
            f"token stream of {stream.numel()} tokens is too short for seq_len {phase.seq_len}"
        )
    starts = torch.randint(0, high, (phase.batch_size,), generator=gen)
    idx = starts[:, None] + torch.arange(phase.seq_len + 1)[None, :]
    return stream[idx].long()


def _optimizer(model: torch.nn.Module, phase: Phase) -> torch.optim.AdamW:
    """AdamW; no weight decay on norms (1-d parameters)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": phase.weight_decay},
        {"params": other, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=phase.lr, betas=(0.9, 0.95), eps=1e-8)


def run_phase(
    model: torch.nn.Module,
    stream: torch.Tensor,
    phase: Phase,
    seed: int,
    desc: str,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
) -> float:
    """Optimise ``loss_fn(windows)`` for ``phase.steps`` steps; returns the last smoothed loss."""
    gen = torch.Generator().manual_seed(seed)
    opt = _optimizer(model, phase)
    model.train()
    smooth = float("nan")
    bar = tqdm(range(phase.steps), desc=desc, mininterval=5.0, leave=False)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(phase, step)
        loss = loss_fn(sample_windows(stream, phase, gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        value = loss.item()
        smooth = value if math.isnan(smooth) else 0.95 * smooth + 0.05 * value
        bar.set_postfix(loss=f"{smooth:.3f}", refresh=False)
        if (step + 1) % max(1, phase.steps // 10) == 0:
            log.info("%s: step %d/%d, loss %.3f", desc, step + 1, phase.steps, smooth)
    model.eval()
    return smooth


def lm_loss(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Next-token cross-entropy on windows (B, T+1)."""

    def loss(windows: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=windows[:, :-1]).logits
        return F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())

    return loss


def distill_loss(
    draft: torch.nn.Module, target: torch.nn.Module, temperature: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """KL(target || draft) per position at ``temperature``, on the same windows."""

    def loss(windows: torch.Tensor) -> torch.Tensor:
        inputs = windows[:, :-1]
        with torch.no_grad():
            teacher = F.log_softmax(target(input_ids=inputs).logits / temperature, dim=-1)
        student = F.log_softmax(draft(input_ids=inputs).logits / temperature, dim=-1)
        kl = F.kl_div(
            student.flatten(0, 1), teacher.flatten(0, 1), log_target=True, reduction="batchmean"
        )
        return kl * temperature**2

    return loss


@torch.no_grad()
def bigram_init(
    model: LlamaForCausalLM, stream: torch.Tensor, seed: int, prior: float = 20.0
) -> None:
    """Start ``model`` as a bigram model of ``stream``, so training skips the slow first phase.

    The row-centred log bigram probabilities (counts smoothed towards unigram frequencies with
    ``prior`` pseudo-counts) are factorised by a rank-``hidden`` randomized SVD into the input
    embeddings and the (untied) output embeddings; the layers' output projections start at zero,
    so at step 0 the model's logits are that low-rank bigram table (up to a per-token scale
    from the final RMSNorm). Deterministic for ``seed``.
    """
    vocab, hidden = model.config.vocab_size, model.config.hidden_size
    tokens = stream.long()
    unigram = (torch.bincount(tokens, minlength=vocab).double() + 1.0) / (tokens.numel() + vocab)
    pairs = torch.bincount(tokens[:-1] * vocab + tokens[1:], minlength=vocab * vocab).double()
    counts = pairs.view(vocab, vocab)
    logp = ((counts + prior * unigram) / (counts.sum(1, keepdim=True) + prior)).log()
    centred = (logp - logp.mean(1, keepdim=True)).float()
    torch.manual_seed(seed)
    u, s, v = torch.svd_lowrank(centred, q=hidden, niter=4)
    inputs, outputs = u * s.sqrt(), v * s.sqrt()
    rms = inputs.pow(2).mean(1).sqrt()
    model.get_input_embeddings().weight.copy_(inputs / rms.mean())
    # after the final RMSNorm a row has RMS 1: scale outputs so an average row keeps its logits
    model.get_output_embeddings().weight.copy_(outputs * rms.mean())
    for layer in model.model.layers:
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
