"""Policy: how to decode (mode, lookahead k, Saguaro's fan-out, rescale and miss fallback).

A Policy is written by ``ssdsim.optimize`` (``policy.json``) and read by the simulator and by
the executor. Pure standard library; imports only ``ssdsim._schema``.

Example::

    Policy(mode="ssd", k=4, fan_out=(4, 2, 1, 1, 2), fan_out_miss=(6, 2, 1, 1, 0))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssdsim._schema import (
    SchemaError,
    as_tuple,
    check_choice,
    check_float,
    check_int,
    check_schema_version,
    fail,
    from_file,
    strict_kwargs,
    to_jsonable,
    write_json,
)

POLICY_SCHEMA_VERSION = 1
MODES = ("ar", "sd", "ssd")
FALLBACKS = ("jit", "fast", "auto")


@dataclass(frozen=True)
class Policy:
    """One decoding configuration.

    Fields:
        mode: ``ar`` (one target forward per token), ``sd`` (draft then verify, one device)
            or ``ssd`` (draft and target overlapped on two devices, speculation cache).
        k: lookahead, draft tokens per step (0 for ``ar``, >= 1 otherwise).
        fan_out: ssd only; k+1 integers, the number of bonus-token candidates prepared at each
            accepted length 0..k for sequences whose last request was a cache hit.
        fan_out_miss: ssd only; the same for sequences whose last request missed (same sum).
        rescale: ssd only; Saguaro sampling factor C in (0, 1]: the draft's top candidates are scaled by C
            before sampling (1 = plain sampling). Has no effect at temperature 0.
        fallback: what supplies the next speculation on a cache miss: ``jit`` (the draft decodes
            k tokens for the missed rows), ``fast`` (a cheap n-gram speculator in the target
            process) or ``auto`` (jit below ``auto_threshold`` sequences, fast at or above).
        auto_threshold: batch size from which ``auto`` uses ``fast``.
        draft_temperature: temperature the draft samples at; None means the target's.
    """

    mode: str
    k: int = 0
    fan_out: tuple[int, ...] = ()
    fan_out_miss: tuple[int, ...] = ()
    rescale: float = 1.0
    fallback: str = "jit"
    auto_threshold: int = 8
    draft_temperature: float | None = None
    schema_version: int = POLICY_SCHEMA_VERSION

    def __post_init__(self) -> None:
        o = "Policy"
        check_schema_version(o, self.schema_version, POLICY_SCHEMA_VERSION)
        check_choice(o, "mode", self.mode, MODES)
        check_int(o, "k", self.k, 0)
        if self.mode == "ar" and self.k != 0:
            raise fail(o, "k", self.k, "0 for mode 'ar' (AR drafts nothing)")
        if self.mode in ("sd", "ssd") and self.k < 1:
            raise fail(o, "k", self.k, f"an integer >= 1 for mode {self.mode!r}")
        object.__setattr__(self, "fan_out", as_tuple(self.fan_out))
        object.__setattr__(self, "fan_out_miss", as_tuple(self.fan_out_miss))
        if self.mode == "ssd":
            if not self.fan_out_miss:
                object.__setattr__(self, "fan_out_miss", self.fan_out)
            self._check_fan_out("fan_out", self.fan_out)
            self._check_fan_out("fan_out_miss", self.fan_out_miss)
            if sum(self.fan_out) != sum(self.fan_out_miss):
                raise fail(
                    o,
                    "fan_out_miss",
                    list(self.fan_out_miss),
                    f"the same sum as fan_out {list(self.fan_out)} (= {sum(self.fan_out)}), "
                    f"got sum {sum(self.fan_out_miss)}: the draft's batch shape must not depend on hits",
                )
        else:
            for name in ("fan_out", "fan_out_miss"):
                if getattr(self, name):
                    raise fail(o, name, list(getattr(self, name)), f"empty for mode {self.mode!r}")
        check_float(o, "rescale", self.rescale, 0.0, 1.0, low_open=True)
        check_choice(o, "fallback", self.fallback, FALLBACKS)
        check_int(o, "auto_threshold", self.auto_threshold, 1)
        if self.draft_temperature is not None:
            check_float(o, "draft_temperature", self.draft_temperature, 0.0)

    def _check_fan_out(self, name: str, fan: tuple[int, ...]) -> None:
        o = "Policy"
        if len(fan) != self.k + 1:
            raise fail(
                o,
                name,
                list(fan),
                f"a list of k+1 = {self.k + 1} integers (one per accepted length 0..k), got {len(fan)}",
            )
        for i, f in enumerate(fan):
            if isinstance(f, bool) or not isinstance(f, int) or f < 0:
                raise fail(o, f"{name}[{i}]", f, "a non-negative integer")
        if sum(fan) == 0:
            raise fail(
                o,
                name,
                list(fan),
                "at least one positive entry (an all-zero fan-out can never hit)",
            )

    # -- derived -----------------------------------------------------------------------------
    @property
    def budget(self) -> int:
        """Cache budget M: branches prepared per sequence per step (the fan-out sum)."""
        return sum(self.fan_out)

    def fallback_for(self, batch_size: int) -> str:
        """The concrete fallback (``jit`` or ``fast``) used at this batch size."""
        if self.fallback != "auto":
            return self.fallback
        return "fast" if batch_size >= self.auto_threshold else "jit"

    def label(self) -> str:
        """Short human-readable description, e.g. ``ssd k=4 F=[4,2,1,1,2]/[6,2,1,1,0] jit C=1``."""
        if self.mode == "ar":
            return "ar"
        if self.mode == "sd":
            return f"sd k={self.k}"
        fo = ",".join(map(str, self.fan_out))
        fm = ",".join(map(str, self.fan_out_miss))
        fb = self.fallback if self.fallback != "auto" else f"auto@{self.auto_threshold}"
        tail = f" C={self.rescale:g}" if self.rescale != 1.0 else ""
        return f"ssd k={self.k} F=[{fo}]/[{fm}] {fb}{tail}"

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        kw = strict_kwargs(cls, data)
        kw.setdefault("schema_version", POLICY_SCHEMA_VERSION)
        return cls(**kw)

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        return from_file(cls, path)

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())


def uniform_ssd(k: int, fan: int, fallback: str = "jit", **kw: Any) -> Policy:
    """SSD with the same fan-out at every accepted length (the reference engine's default)."""
    return Policy(
        mode="ssd",
        k=k,
        fan_out=(fan,) * (k + 1),
        fan_out_miss=(fan,) * (k + 1),
        fallback=fallback,
        **kw,
    )


def paper_default() -> Policy:
    """The paper's default SSD policy: k=7, uniform fan-out 3, jit fallback."""
    return uniform_ssd(7, 3, "jit")


def parse_int_list(text: str, what: str = "fan-out") -> tuple[int, ...]:
    """Parse a comma-separated integer list from the command line (``"4,2,1,1"``)."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip() != "")
    except ValueError as exc:
        raise SchemaError(
            f"--{what}: got {text!r}, expected comma-separated integers like 4,2,1,1"
        ) from exc
