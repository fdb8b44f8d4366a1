"""What every decoding engine shares: sampling settings, batch bookkeeping, prefill, the decode loop.

An engine (AR, SD; SSD builds on the same pieces) implements ``prefill(batch)`` (fill its caches
with the prompts) and ``step(batch) -> StepRecord`` (one decode step of the whole batch); it may
add ``finish_batch(batch)`` (called after a batch's last step, off the decode clock) and
``summary_fields()`` (keyword arguments for ``summary_from_steps``: draft_busy_s, extra).
``generate`` splits the prompts into batches of ``batch_size``, runs prefill (excluded from
decode time: ``DecodeClock`` only runs during steps), samples the first token from the target's
prefill logits, steps until every sequence has ``max_new_tokens`` tokens (or an EOS unless
``ignore_eos``), and returns the outputs, the step records and the summary in the shared trace
schema. Imports torch, kernels, executor.model and the ssdsim trace contract only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from executor.model.decoder import Decoder
from kernels.sampling import probs_from_logits, sample
from ssdsim.trace import RunSummary, SeqOutcome, StepRecord, summary_from_steps


@dataclass(frozen=True)
class Sampling:
    """Sampling settings of a run.

    temperature: the target's (0 = greedy). draft_temperature: the draft's (None = the
    target's). rescale: Saguaro's C applied to the draft's top ``rescale_top_n`` probabilities
    (1 = plain sampling). seed: seeds the run's one ``torch.Generator``.
    """

    temperature: float = 0.0
    draft_temperature: float | None = None
    rescale: float = 1.0
    rescale_top_n: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0 or (
            self.draft_temperature is not None and self.draft_temperature < 0
        ):
            raise ValueError(
                f"Sampling: temperatures must be >= 0, got {self.temperature}, {self.draft_temperature}"
            )
        if not 0.0 < self.rescale <= 1.0 or self.rescale_top_n < 1:
            raise ValueError(
                f"Sampling: rescale must be in (0, 1] and rescale_top_n >= 1, got {self.rescale}, {self.rescale_top_n}"
            )

    @property
    def draft_t(self) -> float:
        return self.temperature if self.draft_temperature is None else self.draft_temperature

    @property
    def greedy(self) -> bool:
        """Target and draft both greedy: verification needs no q."""
        return self.temperature == 0 and self.draft_t == 0


class DecodeClock:
    """Seconds spent decoding: runs only between ``resume`` and ``pause`` (prefill excluded)."""

    def __init__(self) -> None:
        self._elapsed = 0.0
        self._since: float | None = None

    def resume(self) -> None:
        self._since = time.perf_counter()

    def pause(self) -> None:
        self._elapsed = self.now()
        self._since = None

    def now(self) -> float:
        if self._since is None:
            return self._elapsed
        return self._elapsed + time.perf_counter() - self._since

    @property
    def origin_s(self) -> float:
        """The time.perf_counter() reading of decode time 0 while the clock runs (other processes'
        perf_counter readings on this host convert as reading - origin_s)."""
        if self._since is None:
            raise RuntimeError("DecodeClock.origin_s: the clock is paused")
        return self._since - self._elapsed


@dataclass
class Batch:
    """Host and device state of B sequences decoded together.

    seq_len [B] (device): tokens of each sequence so far, prompt plus generated, the last of
    which (``pending`` [B]) is not yet in the target's cache. ``outputs`` holds the generated ids.
    Finished rows are frozen: their seq_len no longer moves (engines may keep computing them).
    """

    seq_ids: list[int]
    prompts: list[list[int]]
    max_new_tokens: int
    eos_ids: frozenset[int]
    clock: DecodeClock
    generator: torch.Generator
    temperature: torch.Tensor
    seq_len: torch.Tensor
    pending: torch.Tensor
    outputs: list[list[int]] = field(default_factory=list)
    done: list[bool] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.seq_ids)

    @property
    def capacity_tokens(self) -> int:
        """Longest a sequence can get: prompt plus max_new_tokens."""
        return max(len(p) for p in self.prompts) + self.max_new_tokens

    _live: torch.Tensor | None = None

    def live_rows(self) -> list[int]:
        """Rows still generating (host list)."""
        return [r for r, d in enumerate(self.done) if not d]

    @property
    def live(self) -> torch.Tensor:
        """Rows still generating, as a device long tensor [B] of 0/1 (rebuilt only when a row finishes)."""
        if self._live is None:
            self._live = torch.tensor(
                [0 if d else 1 for d in self.done], dtype=torch.long, device=self.seq_len.device
            )
        return self._live

    def commit(self, row: int, tokens: Sequence[int]) -> list[int]:
        """Append a row's new tokens, cut at EOS / max_new_tokens; returns what was kept."""
        out = self.outputs[row]
        kept: list[int] = []
        for t in tokens:
            if len(out) >= self.max_new_tokens:
                break
            out.append(t)
            kept.append(t)
            if t in self.eos_ids:
                break
        if len(out) >= self.max_new_tokens or (kept and kept[-1] in self.eos_ids):
            self.done[row] = True
            self._live = None
        return kept

    def record(
        self, t_start_s: float, outcomes: list[SeqOutcome], *, verify_s: float, draft_s: float = 0.0
    ) -> StepRecord:
        rec = StepRecord(
            step=len(self.steps),
            t_start_s=t_start_s,
            t_end_s=self.clock.now(),
            seqs=tuple(outcomes),
            verify_s=verify_s,
            draft_s=draft_s,
        )
        self.steps.append(rec)
        return rec


class Engine(Protocol):
    mode: str
    target: Decoder

    def prefill(self, batch: Batch) -> torch.Tensor:
        """Fill the caches with the prompts; return the target's logits [B, V] after each prompt."""

    def step(self, batch: Batch) -> None:
        """One decode step of the batch: emit tokens (batch.commit) and record it (batch.record)."""


def right_pad(
    prompts: Sequence[Sequence[int]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts as a right-padded [B, max_len] tensor (pad = 0) and their lengths [B]."""
    lens = [len(p) for p in prompts]
    tokens = torch.zeros((len(prompts), max(lens)), dtype=torch.long)
    for i, p in enumerate(prompts):
        tokens[i, : len(p)] = torch.tensor(p, dtype=torch.long)
    return tokens.to(device), torch.tensor(lens, dtype=torch.long, device=device)


def prefill_logits(model: Decoder, cache, prompts: Sequence[Sequence[int]]) -> torch.Tensor:
    """Write the prompts' keys/values into cache rows 0..B-1 and return the logits after each prompt [B, V].

    Prompts are right-padded into one forward: pads sit after every real token, so no real token
    attends to them, and their cache entries lie past the row's length (overwritten later).
    """
    tokens, lens = right_pad(prompts, model.device)
    zeros = torch.zeros(len(prompts), dtype=torch.long, device=model.device)
    logits = model.forward(tokens, zeros, cache, logits_at=lens - 1)
    cache.set_lengths(lens)
    return logits


@dataclass
class RunResult:
    """Generated ids per prompt (in prompt order), every decode step, and the run's summary."""

    outputs: list[list[int]]
    steps: list[StepRecord]
    summary: RunSummary | None
    prefill_s: float
    machine: dict[str, Any] = field(default_factory=dict)  # e.g. executor.run's speed probe


def _new_batch(engine: Engine, prompts: list[list[int]], first_seq: int, shared: dict) -> Batch:
    """A batch of prompts numbered from first_seq; ``shared`` holds what every batch of a run shares."""
    device = engine.target.device
    b = len(prompts)
    return Batch(
        seq_ids=list(range(first_seq, first_seq + b)),
        prompts=prompts,
        temperature=torch.full((b,), float(shared.pop("temperature")), device=device),
        seq_len=torch.tensor([len(p) for p in prompts], dtype=torch.long, device=device),
        pending=torch.zeros(b, dtype=torch.long, device=device),
        outputs=[[] for _ in range(b)],
        done=[False] * b,
        **shared,
    )


def _decode_batch(engine: Engine, batch: Batch) -> float:
    """Prefill (sampling each row's first token from the target) then step to the end; returns prefill seconds."""
    t0 = time.perf_counter()
    logits = engine.prefill(batch)
    first = sample(probs_from_logits(logits, batch.temperature), batch.generator)
    batch.pending.copy_(first)
    batch.seq_len += 1
    for row, tok in enumerate(first.tolist()):
        batch.commit(row, [tok])
    prefill_s = time.perf_counter() - t0
    batch.clock.resume()
    while not all(batch.done):
        engine.step(batch)
    batch.clock.pause()
    finish = getattr(engine, "finish_batch", None)
    if finish is not None:  # off the decode clock (SSD: the last step's draft-side facts)
        finish(batch)
    return prefill_s


def generate(
    engine: Engine,
    prompts: Sequence[Sequence[int]],
    *,
    batch_size: int,
    max_new_tokens: int,
    sampling: Sampling,
    ignore_eos: bool = True,
    eos_token_ids: Sequence[int] | None = None,
    steps_out: list[StepRecord] | None = None,
    between_batches: Callable[[float], None] | None = None,
) -> RunResult:
    """Decode every prompt with ``engine``, ``batch_size`` at a time; see the module docstring.

    eos_token_ids: what ends a sequence unless ignore_eos (default: the target config's).
    steps_out: a list to append step records to as they happen (default: a new one).
    between_batches: called before every batch but the first with the decode clock's seconds so
    far, off that clock (``executor.run --speed-probe`` times the machine there).
    """
    if not prompts or batch_size < 1 or max_new_tokens < 1 or any(len(p) == 0 for p in prompts):
        raise ValueError(
            f"generate: need non-empty prompts, batch_size >= 1, max_new_tokens >= 1 (got {len(prompts)}, {batch_size}, {max_new_tokens})"
        )
    if eos_token_ids is None:
        eos_token_ids = engine.target.config.eos_token_ids
    eos = frozenset() if ignore_eos else frozenset(eos_token_ids)
    generator = torch.Generator(engine.target.device).manual_seed(sampling.seed)
    shared = dict(
        max_new_tokens=max_new_tokens, eos_ids=eos, clock=DecodeClock(), generator=generator
    )
    steps: list[StepRecord] = steps_out if steps_out is not None else []
    outputs: list[list[int]] = []
    prefill_s = 0.0
    with torch.inference_mode():
        for lo in range(0, len(prompts), batch_size):
            chunk = [list(p) for p in prompts[lo : lo + batch_size]]
            if lo and between_batches is not None:
                between_batches(shared["clock"].now())
            batch = _new_batch(
                engine, chunk, lo, {**shared, "steps": steps, "temperature": sampling.temperature}
            )
            prefill_s += _decode_batch(engine, batch)
            outputs.extend(batch.outputs)
    label = getattr(engine, "label", engine.mode)
    fields = engine.summary_fields() if hasattr(engine, "summary_fields") else {}
    summary = (
        summary_from_steps(
            steps, mode=engine.mode, policy=label, temperature=sampling.temperature, **fields
        )
        if steps
        else None
    )
    return RunResult(outputs=outputs, steps=steps, summary=summary, prefill_s=prefill_s)
