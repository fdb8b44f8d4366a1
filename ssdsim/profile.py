"""Profile: the cost and chance models of one model pair on one hardware setup.

A Profile holds parameters only; the math that uses them lives in ``ssdsim.latency`` and
``ssdsim.chance`` (pure functions). Presets ship in ``ssdsim/presets/*.json``; calibration
(``ssdsim.calibrate``) writes new ones. Pure standard library; imports only ``ssdsim._schema``.

Latency of one forward pass of B sequences, n new tokens each, over a context of c tokens::

    t(B, n, c) = fixed_s + max(weight_s + kv_s * B * c,  compute_s * B * n)
                 + token_s * B * n + attn_s * B * n * c

The ``max`` is a GPU roofline (flat while memory-bound, then linear in tokens); a CPU is
``fixed_s + token_s * B * n`` (+ ``attn_s`` for long contexts). A message across the link costs
``fixed_s + per_byte_s * bytes``.

Chance: conditional acceptance per draft position (``alpha[i]`` = P(token i+1 accepted | the
first i were); the last entry repeats), separately for draft proposals after a cache hit, draft
proposals on a missed row (jit), and the fast fallback speculator. Coverage: the chance that the
bonus token is among the draft's top-F candidates, ``1 - c(F) = beta * F^-r`` per position, or
measured tables ``c(F), F = 1..len``. The effect of temperature T and of the Saguaro rescale C is
a documented parametric model (``TemperatureModel``) until calibration supplies measured points
(``ChancePoint``) for the (T, C) of interest.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssdsim._schema import (
    SchemaError,
    as_tuple,
    check_float,
    check_int,
    check_probs,
    check_schema_version,
    fail,
    from_file,
    strict_kwargs,
    to_jsonable,
    write_json,
)

PROFILE_SCHEMA_VERSION = 1


def _nonneg(owner: str, obj: Any, names: tuple[str, ...]) -> None:
    for n in names:
        check_float(owner, n, getattr(obj, n), 0.0)


@dataclass(frozen=True)
class ForwardLatency:
    """Seconds for one forward pass; see the module docstring for the formula."""

    fixed_s: float = 0.0
    weight_s: float = 0.0
    kv_s: float = 0.0
    compute_s: float = 0.0
    token_s: float = 0.0
    attn_s: float = 0.0

    def __post_init__(self) -> None:
        _nonneg(
            "ForwardLatency",
            self,
            ("fixed_s", "weight_s", "kv_s", "compute_s", "token_s", "attn_s"),
        )

    @classmethod
    def from_dict(cls, data: Any, owner: str = "ForwardLatency") -> ForwardLatency:
        return cls(**strict_kwargs(cls, data, owner))


@dataclass(frozen=True)
class LinkLatency:
    """Seconds for one message between the target and draft devices: fixed + per byte."""

    fixed_s: float = 0.0
    per_byte_s: float = 0.0

    def __post_init__(self) -> None:
        _nonneg("LinkLatency", self, ("fixed_s", "per_byte_s"))

    @classmethod
    def from_dict(cls, data: Any, owner: str = "LinkLatency") -> LinkLatency:
        return cls(**strict_kwargs(cls, data, owner))


@dataclass(frozen=True)
class Coverage:
    """Chance that the bonus token is among the draft's top-F candidates at its position.

    ``beta_reject[j]`` / ``r``: power law for the token that follows a rejection at position j
    (the speculated token excluded from the candidates); ``beta_bonus`` / ``r_bonus``: for the
    bonus token after all k proposals were accepted. Optional measured tables give c(F) for
    F = 1..len(table) and take precedence over the power law inside their range.
    """

    beta_reject: tuple[float, ...] = (0.3,)
    r: float = 1.0
    beta_bonus: float = 0.3
    r_bonus: float | None = None
    reject_tables: tuple[tuple[float, ...], ...] = ()
    bonus_table: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        o = "Coverage"
        object.__setattr__(self, "beta_reject", check_probs(o, "beta_reject", self.beta_reject))
        check_float(o, "r", self.r, 0.0, low_open=True)
        check_float(o, "beta_bonus", self.beta_bonus, 0.0, 1.0)
        if self.r_bonus is not None:
            check_float(o, "r_bonus", self.r_bonus, 0.0, low_open=True)
        tables = as_tuple(self.reject_tables)
        for j, t in enumerate(tables):
            _check_cdf(o, f"reject_tables[{j}]", t)
        object.__setattr__(self, "reject_tables", tuple(tuple(float(x) for x in t) for t in tables))
        bt = as_tuple(self.bonus_table)
        if bt:
            _check_cdf(o, "bonus_table", bt)
        object.__setattr__(self, "bonus_table", tuple(float(x) for x in bt))

    @classmethod
    def from_dict(cls, data: Any, owner: str = "Coverage") -> Coverage:
        return cls(**strict_kwargs(cls, data, owner))


def _check_cdf(owner: str, name: str, table: Any) -> None:
    check_probs(owner, name, table)
    if any(b < a - 1e-12 for a, b in itertools.pairwise(table)):
        raise fail(
            owner, name, list(table), "a non-decreasing list c(1), c(2), ... of probabilities"
        )


@dataclass(frozen=True)
class TemperatureModel:
    """Documented parametric effect of temperature T and Saguaro rescale C (used until measured).

    Base values are the greedy ones (T = 0, C = 1). With t = min(T, 2) and g = min(T, 1) (the
    rescale acts only when sampling, fully from T = 1; at T = 0 C has no effect):
        alpha_i(T, C)     = alpha_i * (1 - alpha_temp_slope * t) * (1 - alpha_rescale_slope * (1 - C) * g)
        alpha_fast_i(T)   = alpha_fast_i * (1 - alpha_temp_slope * t)      (it does not sample from q')
        beta_reject(T, C) = min(1, beta_reject * (1 + beta_temp_slope * t) * C ** (beta_rescale_exponent * g))
        beta_bonus(T)     = min(1, beta_bonus * (1 + beta_temp_slope * t))
    Measured coverage tables move the same way: 1 - c(F) is multiplied by the beta factor.
    C < 1 moves residual mass onto the draft's top candidates (coverage up) at the price of a
    worse proposal (acceptance down); the bonus after full acceptance comes from p and ignores C.
    ``ssdsim.chance.chance_at`` applies it, relative to the nearest measured ChancePoint if any.
    """

    alpha_temp_slope: float = 0.1
    beta_temp_slope: float = 1.0
    alpha_rescale_slope: float = 0.25
    beta_rescale_exponent: float = 1.0

    def __post_init__(self) -> None:
        o = "TemperatureModel"
        check_float(o, "alpha_temp_slope", self.alpha_temp_slope, 0.0, 0.5)
        check_float(o, "beta_temp_slope", self.beta_temp_slope, 0.0)
        check_float(o, "alpha_rescale_slope", self.alpha_rescale_slope, 0.0, 1.0)
        check_float(o, "beta_rescale_exponent", self.beta_rescale_exponent, 0.0)

    @classmethod
    def from_dict(cls, data: Any, owner: str = "TemperatureModel") -> TemperatureModel:
        return cls(**strict_kwargs(cls, data, owner))


@dataclass(frozen=True)
class ChancePoint:
    """Measured acceptance and coverage at one (temperature, rescale); overrides the parametric model."""

    temperature: float
    rescale: float
    alpha: tuple[float, ...]
    alpha_after_miss: tuple[float, ...] | None = None
    alpha_fast: tuple[float, ...] | None = None
    coverage: Coverage | None = None
    samples: int = 0

    def __post_init__(self) -> None:
        o = "ChancePoint"
        check_float(o, "temperature", self.temperature, 0.0)
        check_float(o, "rescale", self.rescale, 0.0, 1.0, low_open=True)
        object.__setattr__(self, "alpha", check_probs(o, "alpha", self.alpha))
        for n in ("alpha_after_miss", "alpha_fast"):
            if getattr(self, n) is not None:
                object.__setattr__(self, n, check_probs(o, n, getattr(self, n)))
        if isinstance(self.coverage, dict):
            object.__setattr__(self, "coverage", Coverage.from_dict(self.coverage, f"{o}.coverage"))
        check_int(o, "samples", self.samples, 0)

    @classmethod
    def from_dict(cls, data: Any, owner: str = "ChancePoint") -> ChancePoint:
        return cls(**strict_kwargs(cls, data, owner))


@dataclass(frozen=True)
class Chance:
    """Acceptance and coverage of one model pair (greedy base values plus measured points)."""

    alpha: tuple[float, ...] = (0.8,)
    alpha_after_miss: tuple[float, ...] | None = None
    alpha_fast: tuple[float, ...] = (0.3,)
    coverage: Coverage = field(default_factory=Coverage)
    temperature_model: TemperatureModel = field(default_factory=TemperatureModel)
    points: tuple[ChancePoint, ...] = ()

    def __post_init__(self) -> None:
        o = "Chance"
        object.__setattr__(self, "alpha", check_probs(o, "alpha", self.alpha))
        if self.alpha_after_miss is not None:
            object.__setattr__(
                self, "alpha_after_miss", check_probs(o, "alpha_after_miss", self.alpha_after_miss)
            )
        object.__setattr__(self, "alpha_fast", check_probs(o, "alpha_fast", self.alpha_fast))
        if isinstance(self.coverage, dict):
            object.__setattr__(self, "coverage", Coverage.from_dict(self.coverage, f"{o}.coverage"))
        if isinstance(self.temperature_model, dict):
            object.__setattr__(
                self,
                "temperature_model",
                TemperatureModel.from_dict(self.temperature_model, f"{o}.temperature_model"),
            )
        pts = tuple(
            ChancePoint.from_dict(p, f"{o}.points[{i}]") if isinstance(p, dict) else p
            for i, p in enumerate(as_tuple(self.points) or ())
        )
        object.__setattr__(self, "points", pts)

    @classmethod
    def from_dict(cls, data: Any, owner: str = "Chance") -> Chance:
        return cls(**strict_kwargs(cls, data, owner))


@dataclass(frozen=True)
class Profile:
    """Cost and chance models for one model pair on one hardware setup.

    Fields:
        name, description: identification; ``provenance`` records device, models, dtype,
            software versions and source traces.
        target, draft: forward latency of each model on its own device.
        link: message latency between the devices (SSD only; SD runs on one device).
        step_overhead_s, seq_overhead_s: host work on the target's critical path per decode
            step (sampling, verification, bookkeeping): fixed + per sequence.
        fast_s, fast_seq_s: latency of the fast fallback speculator per step: fixed + per sequence.
        chance: acceptance and coverage.
        vocab_size, dist_bytes: vocabulary size and bytes per probability entry (messages and
            cache memory); draft_kv_bytes_per_token: draft KV bytes per cached token.
        cache_memory_bytes: the draft device's memory for the speculation cache (optimizer limit).
        max_context_tokens: longest context the models accept.
    """

    name: str
    target: ForwardLatency
    draft: ForwardLatency
    link: LinkLatency = field(default_factory=LinkLatency)
    chance: Chance = field(default_factory=Chance)
    step_overhead_s: float = 0.0
    seq_overhead_s: float = 0.0
    fast_s: float = 0.0
    fast_seq_s: float = 0.0
    vocab_size: int = 32000
    dist_bytes: int = 4
    draft_kv_bytes_per_token: int = 0
    cache_memory_bytes: int = 8 * 2**30
    max_context_tokens: int = 8192
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: int = PROFILE_SCHEMA_VERSION

    def __post_init__(self) -> None:
        o = "Profile"
        check_schema_version(o, self.schema_version, PROFILE_SCHEMA_VERSION)
        if not isinstance(self.name, str) or not self.name:
            raise fail(o, "name", self.name, "a non-empty string")
        for n, cls in (
            ("target", ForwardLatency),
            ("draft", ForwardLatency),
            ("link", LinkLatency),
            ("chance", Chance),
        ):
            v = getattr(self, n)
            if isinstance(v, dict):
                object.__setattr__(self, n, cls.from_dict(v, f"{o}.{n}"))
            elif not isinstance(v, cls):
                raise fail(o, n, v, f"a {cls.__name__} object")
        _nonneg(o, self, ("step_overhead_s", "seq_overhead_s", "fast_s", "fast_seq_s"))
        check_int(o, "vocab_size", self.vocab_size, 2)
        check_int(o, "dist_bytes", self.dist_bytes, 1)
        check_int(o, "draft_kv_bytes_per_token", self.draft_kv_bytes_per_token, 0)
        check_int(o, "cache_memory_bytes", self.cache_memory_bytes, 1)
        check_int(o, "max_context_tokens", self.max_context_tokens, 2)
        if not isinstance(self.provenance, dict):
            raise fail(o, "provenance", self.provenance, "a JSON object")

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def from_dict(cls, data: Any) -> Profile:
        return cls(**strict_kwargs(cls, data))

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        return from_file(cls, path)

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())


PRESETS_DIR = Path(__file__).with_name("presets")


def list_presets() -> list[str]:
    """Names of the profiles that ship with the package."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A preset by name (see ``list_presets``) or a profile JSON file."""
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists() or "/" in str(name_or_path):
        return Profile.load(p)
    preset = PRESETS_DIR / f"{name_or_path}.json"
    if not preset.is_file():
        raise SchemaError(
            f"profile {str(name_or_path)!r} is neither a file nor a preset; presets: {', '.join(list_presets()) or 'none'}"
        )
    return Profile.load(preset)
