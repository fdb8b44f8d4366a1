"""Text replay at T = 0: the accepted lengths and cache hits a greedy text dictates, row by row.

A replay file (``python -m executor.replay``) holds, per sequence of a prompt set: ``text``, the
target's greedy output (longer than the workload's output length by the longest lookahead + 1);
``draft_top[q]``, the draft's best candidates at text position q (the distribution that
predicts text[q]), best first, ties by token id; ``fast[q]``, the fast speculator's proposals for
a row starting at q (empty: no n-gram match). Fields: ``kind`` ("text_replay"), ``pair``,
``prompts``, ``num_prompts``, ``max_new_tokens``, ``max_k``, ``depth`` (candidates kept per
position), ``sequences`` (each with ``prompt_len``, ``text``, ``draft_top``, ``fast``),
``schema_version``.

At T = 0 with greedy drafting these fix every outcome (``Replay.row``): a draft row (SD, an SSD
hit or a jit miss) starting at q with n proposals accepts A = the number of leading positions
where the draft's best candidate is the text; a fast row accepts the leading proposals that are
the text; the bonus is text[q + A]; and the next request hits when the bonus's rank among the
draft's candidates at q + A, the rejected proposal excluded (nothing excluded when all n were
accepted), is at most the fan-out F_A of the row's list (after a hit or after a miss). The
simulator replays them instead of sampling (``ssdsim.simulate(..., replay=...)``), so a T = 0
prediction keeps only timing as a model: the doorbell's depth, and the seconds of each part.
Pure Python and numpy; never torch or the executor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssdsim._schema import SchemaError
from ssdsim.policy import Policy
from ssdsim.trace import Trace
from ssdsim.workload import Workload

REPLAY_SCHEMA_VERSION = 1
FIRST_POSITION = 1  # text position of a sequence's first decode row (the prefill emitted text[0])


@dataclass(frozen=True)
class RowOutcome:
    """One replayed row: proposals verified, accepted length and the next request's bonus rank
    (1-based, the excluded proposal removed; 0 beyond the recorded candidates or the text)."""

    proposed: int
    accepted: int
    rank: int

    def hits_next(self, fan_out: Sequence[int]) -> bool:
        """Whether the next request hits: the bonus ranks within the fan-out at the accepted
        length (``fan_out``: the list of the row's kind, after a hit or after a miss)."""
        return 0 < self.rank <= fan_out[self.accepted]


@dataclass(frozen=True)
class ReplaySeq:
    """One sequence: its prompt's length, the greedy text, the draft's candidates per position
    (``draft_top``) and the n-gram proposals per position (``fast``)."""

    prompt_len: int
    text: tuple[int, ...]
    top: tuple[tuple[int, ...], ...]
    fast: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Replay:
    """A prompt set's greedy texts with the draft's candidates and the n-gram proposals."""

    sequences: tuple[ReplaySeq, ...]
    max_k: int
    depth: int
    source: str = ""
    digest: str = ""  # sha256 of the file it was read from (names optimizer studies)

    def row(self, seq: int, pos: int, n: int, proposer: str) -> RowOutcome:
        """The row of sequence ``seq`` whose first proposal would be text[pos]: up to ``n``
        proposals from ``draft`` (greedy; n is k, or a hit's tree depth) or ``fast`` (the n-gram
        speculator's, at most k)."""
        s = self.sequences[seq % len(self.sequences)]  # a workload cycles its prompt set
        end = len(s.text)
        if proposer == "fast":
            props = s.fast[pos][:n] if pos < end else ()
        else:
            props = tuple(s.top[q][0] for q in range(pos, min(pos + n, end)))
            props += (-1,) * (n - len(props))  # past the text: nothing can be accepted
        a = 0
        while a < len(props) and pos + a < end and props[a] == s.text[pos + a]:
            a += 1
        bonus = pos + a
        if bonus >= end:
            return RowOutcome(len(props), a, 0)
        excluded = props[a] if a < len(props) else None
        rank = 0
        for c in s.top[bonus]:
            if c == excluded:
                continue
            rank += 1
            if c == s.text[bonus]:
                break
        else:
            rank = 0
        return RowOutcome(len(props), a, rank)

    def check_fits(
        self, prompt_lens: Sequence[int], longest_output: int, k: int, where: str
    ) -> None:
        """Errors (naming ``where``) when the replay cannot serve a workload whose sequences have
        these prompt lengths, outputs of up to ``longest_output`` tokens and lookahead ``k``."""
        n = len(self.sequences)
        theirs = [self.sequences[i % n].prompt_len for i in range(len(prompt_lens))]
        if list(map(int, prompt_lens)) != theirs:
            raise SchemaError(
                f"{where}: replay {self.source!r} prompt lengths {theirs} (its {n} sequences, "
                f"cycled as a workload cycles its prompt set) differ from the workload's "
                f"{list(map(int, prompt_lens))} (another prompt set?)"
            )
        if k > self.max_k:
            raise SchemaError(f"{where}: k={k} beyond the replay's max_k={self.max_k}")
        short = min(len(s.text) for s in self.sequences)
        if short < longest_output + k + 1:
            raise SchemaError(
                f"{where}: replay {self.source!r} texts hold {short} tokens, expected at least "
                f"output length + k + 1 = {longest_output + k + 1}"
            )


def replay_from_dict(data: dict[str, Any], source: str = "") -> Replay:
    """Check a replay file's content (errors name the field) and build a Replay."""
    where = source or "replay"
    if not isinstance(data, dict) or data.get("kind") != "text_replay":
        raise SchemaError(
            f"{where}: kind got {data.get('kind') if isinstance(data, dict) else data!r}, expected 'text_replay'"
        )
    if data.get("schema_version") != REPLAY_SCHEMA_VERSION:
        raise SchemaError(
            f"{where}: schema_version got {data.get('schema_version')!r}, expected {REPLAY_SCHEMA_VERSION}"
        )
    seqs = data.get("sequences")
    if not isinstance(seqs, list) or not seqs:
        raise SchemaError(
            f"{where}: sequences got {type(seqs).__name__}, expected a non-empty list"
        )
    out = []
    for i, s in enumerate(seqs):
        try:
            prompt_len = int(s["prompt_len"])
            text = tuple(int(t) for t in s["text"])
            top = tuple(tuple(int(t) for t in row) for row in s["draft_top"])
            fast = tuple(tuple(int(t) for t in row) for row in s["fast"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(
                f"{where}: sequences[{i}] needs prompt_len, text, draft_top, fast ({exc!r})"
            ) from exc
        if not (len(top) == len(fast) == len(text)) or any(not row for row in top):
            raise SchemaError(
                f"{where}: sequences[{i}]: text, draft_top and fast must have one entry per "
                f"position (got {len(text)}, {len(top)}, {len(fast)}) and no empty draft_top"
            )
        out.append(ReplaySeq(prompt_len, text, top, fast))
    limits = {}
    for name in ("max_k", "depth"):
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SchemaError(f"{where}: {name} got {value!r}, expected an integer >= 1")
        limits[name] = value
    return Replay(tuple(out), limits["max_k"], limits["depth"], source)


def load_replay(path: str | Path) -> Replay:
    """Read a replay file (``python -m executor.replay``)."""
    p = Path(path)
    if not p.is_file():
        raise SchemaError(f"replay: no such file {p}")
    raw = p.read_bytes()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{p}: not JSON ({exc})") from exc
    return dataclasses.replace(
        replay_from_dict(data, str(p)), digest=hashlib.sha256(raw).hexdigest()
    )


def applies(policy: Policy, workload: Workload) -> bool:
    """Whether a run's outcomes follow from greedy texts: T = 0 and greedy drafting."""
    return workload.temperature == 0 and not policy.draft_temperature


def check_trace(replay: Replay, trace: Trace) -> dict[str, int]:
    """Replay every row of a T = 0 executor trace and count what comes out differently.

    Walks each sequence's rows from text position 1 (the prefill emitted text[0]): the emitted
    ids against the text (``text_wrong``, rows with ids), each SD/SSD row's accepted length from
    its start and proposal count (``accepted_wrong``; a fast row asks for k and must find as
    many proposals as it verified, ``proposed_wrong``), and each SSD row's hit against the
    replayed rank of the bonus before it (``hit_wrong`` of ``hits_checked``; a sequence's first
    row has no bonus before it)."""
    policy = trace.header.policy
    mode, k = policy.get("mode"), int(policy.get("k", 0))
    fans = {True: policy.get("fan_out") or [], False: policy.get("fan_out_miss") or []}
    if float(trace.header.workload.get("temperature", 0)) != 0:
        raise SchemaError(
            "check_trace: the trace's temperature is not 0; a replay holds greedy texts"
        )
    counts = dict.fromkeys(
        ("rows", "text_wrong", "accepted_wrong", "proposed_wrong", "hits_checked", "hit_wrong"), 0
    )
    pos: dict[int, int] = {}
    expect: dict[int, bool] = {}
    for step in trace.steps:
        for o in step.seqs:
            at = pos.get(o.seq, FIRST_POSITION)
            text = replay.sequences[o.seq].text
            if o.token_ids is not None:
                counts["text_wrong"] += int(
                    list(o.token_ids) != list(text[at : at + o.emitted_tokens])
                )
            pos[o.seq] = at + o.emitted_tokens
            if mode == "ar":
                continue
            counts["rows"] += 1
            if mode == "ssd" and o.seq in expect:
                counts["hits_checked"] += 1
                counts["hit_wrong"] += int(bool(o.cache_hit) != expect[o.seq])
            fast = mode == "ssd" and not o.cache_hit and o.proposer in ("fast", "none")
            got = replay.row(o.seq, at, k if fast else o.proposed, "fast" if fast else "draft")
            counts["accepted_wrong"] += int(got.accepted != o.accepted_len)
            counts["proposed_wrong"] += int(got.proposed != o.proposed)
            if mode == "ssd":
                expect[o.seq] = got.hits_next(fans[bool(o.cache_hit)])
    return counts
