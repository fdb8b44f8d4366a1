"""Helpers shared by the contract objects: validation errors, strict dict parsing, JSON files.

Pure standard library. Imported by policy, workload, profile and trace; imports nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class SchemaError(ValueError):
    """A contract object or file is invalid; the message names the field, the value and what was expected."""


def fail(owner: str, field: str, value: Any, expected: str) -> SchemaError:
    """Build the error for one bad field: ``Policy.k: got 0, expected an integer >= 1 for mode 'sd'``."""
    return SchemaError(f"{owner}.{field}: got {value!r}, expected {expected}")


def check_int(owner: str, field: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(
            owner, field, value, "an integer" + (f" >= {minimum}" if minimum is not None else "")
        )
    if minimum is not None and value < minimum:
        raise fail(owner, field, value, f"an integer >= {minimum}")
    return value


def check_float(
    owner: str,
    field: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite number in [low, high] (either end open on request)."""
    lo_b, hi_b = ("(" if low_open else "["), (")" if high_open else "]")
    rng = f" in {lo_b}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi_b}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise fail(owner, field, value, "a finite number" + rng)
    v = float(value)
    if low is not None and (v < low or (low_open and v == low)):
        raise fail(owner, field, value, "a number" + rng)
    if high is not None and (v > high or (high_open and v == high)):
        raise fail(owner, field, value, "a number" + rng)
    return v


def check_choice(owner: str, field: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise fail(owner, field, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_probs(owner: str, field: str, values: Any, min_len: int = 1) -> tuple[float, ...]:
    """A non-empty sequence of probabilities in [0, 1]."""
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, (list, tuple)) or len(values) < min_len:
        raise fail(owner, field, values, f"a list of at least {min_len} probabilities in [0, 1]")
    for i, v in enumerate(values):
        check_float(owner, f"{field}[{i}]", v, 0.0, 1.0)
    return tuple(float(v) for v in values)


def check_prob_rows(owner: str, field: str, rows: Any) -> tuple[tuple[float, ...], ...]:
    """A (possibly empty) list of non-empty lists of probabilities in [0, 1]."""
    if not isinstance(rows, (list, tuple)):
        raise fail(owner, field, rows, "a list of lists of probabilities in [0, 1]")
    return tuple(check_probs(owner, f"{field}[{i}]", r) for i, r in enumerate(rows))


def as_tuple(value: Any) -> Any:
    """Lists (from JSON) become tuples so that frozen dataclasses stay hashable and comparable."""
    if isinstance(value, list):
        return tuple(as_tuple(v) for v in value)
    return value


def strict_kwargs(cls: type, data: Any, owner: str | None = None) -> dict[str, Any]:
    """Check that ``data`` is a mapping whose keys are all fields of dataclass ``cls`` (typos are errors)."""
    owner = owner or cls.__name__
    if not isinstance(data, Mapping):
        raise SchemaError(f"{owner}: got {type(data).__name__}, expected a JSON object")
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SchemaError(
            f"{owner}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"expected only {', '.join(sorted(names))}"
        )
    missing = sorted(
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise SchemaError(f"{owner}: missing required field(s) {', '.join(map(repr, missing))}")
    return dict(data)


def check_schema_version(owner: str, value: Any, current: int) -> int:
    if value != current:
        raise fail(
            owner,
            "schema_version",
            value,
            f"{current} (this version of ssdsim reads schema {current})",
        )
    return value


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tuples and mappings to plain JSON types (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return obj.to_dict()
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def read_json(path: str | Path, what: str) -> Any:
    """Read one JSON document, with errors that name the file and the problem."""
    p = Path(path)
    if not p.exists():
        raise SchemaError(f"{what} file {str(p)!r} does not exist")
    if not p.is_file():
        raise SchemaError(f"{what} file {str(p)!r} is not a regular file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{what} file {str(p)!r} is unreadable: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"{what} file {str(p)!r} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


def write_json(path: str | Path, data: Any) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return p


def from_file(cls: type[T], path: str | Path) -> T:
    """Load a contract object (anything with ``from_dict``) from a JSON file; errors name the file."""
    data = read_json(path, cls.__name__)
    try:
        return cls.from_dict(data)  # type: ignore[attr-defined]
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from exc
