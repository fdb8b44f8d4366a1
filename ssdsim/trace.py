"""Trace: the per-step record of a decoding run, written by the simulator and the executor alike.

A trace is a JSON-lines file: one ``header`` line (policy, workload, models, devices, versions),
one ``step`` line per decode step, and one ``summary`` line (the ``RunSummary``). Per sequence
each step records the accepted length, the tokens emitted, whether the speculation cache hit,
and the bonus token's rank among the draft's candidates at its position (the speculated token
excluded), so that the hit rate of any other fan-out can be computed from one trace.

Times are seconds from the start of decoding (prefill excluded). Pure standard library.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ssdsim._schema import (
    SchemaError,
    as_tuple,
    check_choice,
    check_float,
    check_int,
    check_schema_version,
    fail,
    strict_kwargs,
    to_jsonable,
)

TRACE_SCHEMA_VERSION = 1
PROPOSERS = ("draft", "fast", "none")


def _opt_time(owner: str, obj: Any, names: tuple[str, ...]) -> None:
    for n in names:
        v = getattr(obj, n)
        if v is not None:
            check_float(owner, n, v, 0.0)


@dataclass(frozen=True)
class SeqOutcome:
    """What one verification did to one sequence.

    seq: sequence id (index in the workload). proposed: draft tokens verified (k, or fewer from
    the fast speculator, 0 for AR). accepted_len: how many were accepted (0..proposed).
    emitted_tokens: tokens appended (accepted + bonus, fewer at the end of the sequence).
    token_ids: the emitted ids when known (executor). cache_hit: SSD only. bonus_rank: 1-based
    rank of the bonus token among the draft's candidates at position accepted_len (None:
    unknown or beyond the recorded depth). proposer: who made the proposals (draft, fast, none).
    """

    seq: int
    accepted_len: int
    emitted_tokens: int
    proposed: int = 0
    cache_hit: bool | None = None
    bonus_rank: int | None = None
    proposer: str = "draft"
    token_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        o = "SeqOutcome"
        check_int(o, "seq", self.seq, 0)
        check_int(o, "proposed", self.proposed, 0)
        check_int(o, "accepted_len", self.accepted_len, 0)
        if self.accepted_len > self.proposed:
            raise fail(o, "accepted_len", self.accepted_len, f"at most proposed = {self.proposed}")
        check_int(o, "emitted_tokens", self.emitted_tokens, 0)
        if self.emitted_tokens > self.accepted_len + 1:
            raise fail(
                o,
                "emitted_tokens",
                self.emitted_tokens,
                f"at most accepted_len + 1 = {self.accepted_len + 1}",
            )
        if self.cache_hit is not None and not isinstance(self.cache_hit, bool):
            raise fail(o, "cache_hit", self.cache_hit, "true, false or null")
        if self.bonus_rank is not None:
            check_int(o, "bonus_rank", self.bonus_rank, 1)
        check_choice(o, "proposer", self.proposer, PROPOSERS)
        if self.token_ids is not None:
            object.__setattr__(self, "token_ids", as_tuple(self.token_ids))


# A step's optional readings of the target's decode clock (the rest of its optional times are
# durations).
STEP_CLOCK_READINGS = (
    "request_s",
    "response_s",
    "verify_start_s",
    "verify_end_s",
    "prespec_start_s",
    "prespec_end_s",
)


@dataclass(frozen=True)
class StepRecord:
    """One decode step of the whole batch.

    t_start_s/t_end_s bound the step on the target's clock. verify_s: target forward plus
    verification; draft_s: drafting on the critical path (SD drafting, SSD jit); wait_s: the
    target idle waiting for the draft (SSD); link_s: link time on the critical path. SSD adds
    request/response and the draft's pre-speculation window (prespec_start_s..prespec_end_s).
    fallback: what served missed rows this step (jit, fast) or None.
    """

    step: int
    t_start_s: float
    t_end_s: float
    seqs: tuple[SeqOutcome, ...]
    verify_s: float = 0.0
    draft_s: float = 0.0
    wait_s: float = 0.0
    link_s: float = 0.0
    request_s: float | None = None
    response_s: float | None = None
    verify_start_s: float | None = None
    verify_end_s: float | None = None
    prespec_start_s: float | None = None
    prespec_end_s: float | None = None
    fallback: str | None = None

    def __post_init__(self) -> None:
        o = "StepRecord"
        check_int(o, "step", self.step, 0)
        check_float(o, "t_start_s", self.t_start_s, 0.0)
        check_float(o, "t_end_s", self.t_end_s, 0.0)
        if self.t_end_s < self.t_start_s:
            raise fail(o, "t_end_s", self.t_end_s, f">= t_start_s = {self.t_start_s}")
        _opt_time(
            o,
            self,
            ("verify_s", "draft_s", "wait_s", "link_s", *STEP_CLOCK_READINGS),
        )
        seqs = tuple(
            SeqOutcome(**strict_kwargs(SeqOutcome, s, f"{o}.seqs[{i}]"))
            if isinstance(s, dict)
            else s
            for i, s in enumerate(as_tuple(self.seqs))
        )
        object.__setattr__(self, "seqs", seqs)
        if self.fallback is not None:
            check_choice(o, "fallback", self.fallback, ("jit", "fast"))

    @property
    def batch_size(self) -> int:
        return len(self.seqs)


@dataclass(frozen=True)
class RunSummary:
    """The headline numbers of one run (simulated or measured).

    tokens_per_s: decode throughput per sequence (mean over sequences of generated tokens /
    their decode time); batch_tokens_per_s: all generated tokens / decode wall time.
    mean_accepted_len: mean accepted draft tokens per sequence-step; tokens_per_step: mean tokens
    emitted per sequence-step; hit_rate: fraction of SSD sequence-steps whose speculation was in
    the cache (None for AR and SD). Time split (seconds, summed over steps): verify_s (target
    verifying), draft_busy_s (draft device busy), draft_critical_s (drafting on the critical path),
    wait_s (target waiting on the draft), link_s (link on the critical path).
    ssd_efficiency: tokens_per_s over the ideal bound tokens_per_step / mean verify time.
    """

    mode: str
    policy: str
    batch_size: int
    temperature: float
    generated_tokens: int
    decode_s: float
    steps: int
    tokens_per_s: float
    batch_tokens_per_s: float
    mean_accepted_len: float
    tokens_per_step: float
    hit_rate: float | None = None
    verify_s: float = 0.0
    draft_busy_s: float = 0.0
    draft_critical_s: float = 0.0
    wait_s: float = 0.0
    link_s: float = 0.0
    mean_verify_s: float = 0.0
    ssd_efficiency: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = TRACE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        o = "RunSummary"
        check_schema_version(o, self.schema_version, TRACE_SCHEMA_VERSION)
        for n in ("generated_tokens", "steps", "batch_size"):
            check_int(o, n, getattr(self, n), 0)
        for n in (
            "temperature",
            "decode_s",
            "tokens_per_s",
            "batch_tokens_per_s",
            "mean_accepted_len",
            "tokens_per_step",
            "verify_s",
            "draft_busy_s",
            "draft_critical_s",
            "wait_s",
            "link_s",
            "mean_verify_s",
        ):
            check_float(o, n, getattr(self, n), 0.0)
        if self.hit_rate is not None:
            check_float(o, "hit_rate", self.hit_rate, 0.0, 1.0)
        if self.ssd_efficiency is not None:
            check_float(o, "ssd_efficiency", self.ssd_efficiency, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def from_dict(cls, data: Any) -> RunSummary:
        return cls(**strict_kwargs(cls, data))


@dataclass(frozen=True)
class TraceHeader:
    """Who produced a trace and under what policy and workload."""

    source: str
    policy: dict[str, Any]
    workload: dict[str, Any]
    profile: str | None = None
    models: dict[str, Any] = field(default_factory=dict)
    devices: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    created: str = ""
    schema_version: int = TRACE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        o = "TraceHeader"
        check_schema_version(o, self.schema_version, TRACE_SCHEMA_VERSION)
        check_choice(o, "source", self.source, ("simulator", "executor"))
        for n in ("policy", "workload", "models", "devices", "versions"):
            if not isinstance(getattr(self, n), dict):
                raise fail(o, n, getattr(self, n), "a JSON object")


def summary_from_steps(
    steps: Iterable[StepRecord],
    *,
    mode: str,
    policy: str,
    temperature: float,
    draft_busy_s: float = 0.0,
    extra: dict[str, Any] | None = None,
) -> RunSummary:
    """Compute a RunSummary from step records (the executor and the simulator share this definition)."""
    steps = list(steps)
    if not steps:
        raise SchemaError("summary_from_steps: no steps")
    t0, t1 = steps[0].t_start_s, steps[-1].t_end_s
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    toks: dict[int, int] = {}
    acc = emitted = n_seqsteps = n_ssd = hits = 0
    for s in steps:
        for o in s.seqs:
            first.setdefault(o.seq, s.t_start_s)
            last[o.seq] = s.t_end_s
            toks[o.seq] = toks.get(o.seq, 0) + o.emitted_tokens
            acc += o.accepted_len
            emitted += o.emitted_tokens
            n_seqsteps += 1
            if o.cache_hit is not None:
                n_ssd += 1
                hits += int(o.cache_hit)
    decode_s = t1 - t0
    per_seq = [toks[q] / (last[q] - first[q]) for q in toks if last[q] > first[q]]
    verify_s = sum(s.verify_s for s in steps)
    tps = sum(per_seq) / len(per_seq) if per_seq else 0.0
    tokens_per_step = emitted / n_seqsteps if n_seqsteps else 0.0
    mean_verify = verify_s / len(steps)
    eff = None
    if mode == "ssd" and mean_verify > 0 and tokens_per_step > 0:
        eff = tps / (tokens_per_step / mean_verify)
    return RunSummary(
        mode=mode,
        policy=policy,
        batch_size=max(len(s.seqs) for s in steps),
        temperature=temperature,
        generated_tokens=emitted,
        decode_s=decode_s,
        steps=len(steps),
        tokens_per_s=tps,
        batch_tokens_per_s=emitted / decode_s if decode_s > 0 else 0.0,
        mean_accepted_len=acc / n_seqsteps if n_seqsteps else 0.0,
        tokens_per_step=tokens_per_step,
        hit_rate=hits / n_ssd if n_ssd else None,
        verify_s=verify_s,
        draft_busy_s=draft_busy_s,
        draft_critical_s=sum(s.draft_s for s in steps),
        wait_s=sum(s.wait_s for s in steps),
        link_s=sum(s.link_s for s in steps),
        mean_verify_s=mean_verify,
        ssd_efficiency=eff,
        extra=dict(extra or {}),
    )


class TraceWriter:
    """Writes a trace file line by line (header, steps, summary); usable as a context manager."""

    def __init__(self, path: str | Path, header: TraceHeader) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = self.path.open("w", encoding="utf-8")
        self._write("header", header)

    def _write(self, kind: str, obj: Any) -> None:
        self._fh.write(json.dumps({"type": kind, **to_jsonable(obj)}, separators=(",", ":")) + "\n")

    def step(self, record: StepRecord) -> None:
        self._write("step", record)

    def summary(self, summary: RunSummary) -> None:
        self._write("summary", summary)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Trace:
    """A trace read back: header, steps, and the summary when the run finished."""

    header: TraceHeader
    steps: list[StepRecord]
    summary: RunSummary | None


def _parse_line(path: Path, n: int, line: str) -> tuple[str, dict[str, Any]]:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
    if not isinstance(rec, dict) or rec.get("type") not in ("header", "step", "summary"):
        raise SchemaError(f"{path}:{n}: expected an object with type header, step or summary")
    kind = rec.pop("type")
    return kind, rec


def iter_records(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    p = Path(path)
    if not p.is_file():
        raise SchemaError(f"trace file {str(p)!r} does not exist")
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                yield _parse_line(p, n, line)


def read_trace(path: str | Path) -> Trace:
    """Read and validate a trace file; errors name the file and line."""
    header: TraceHeader | None = None
    steps: list[StepRecord] = []
    summary: RunSummary | None = None
    for n, (kind, rec) in enumerate(iter_records(path), 1):
        try:
            if kind == "header":
                header = TraceHeader(**strict_kwargs(TraceHeader, rec))
            elif kind == "step":
                steps.append(StepRecord(**strict_kwargs(StepRecord, rec)))
            else:
                summary = RunSummary.from_dict(rec)
        except SchemaError as exc:
            raise SchemaError(f"{path}: record {n}: {exc}") from exc
    if header is None:
        raise SchemaError(f"{path}: no header record")
    return Trace(header=header, steps=steps, summary=summary)
