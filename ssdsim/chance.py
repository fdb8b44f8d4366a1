"""Chance model: acceptance, coverage c_j(F) and bonus ranks, resolved for one (temperature, rescale).

Pure functions on a Profile's ``Chance`` parameters (numpy only; never SimPy, torch or the
executor). Vocabulary:

- ``alpha``: conditional acceptance per draft position, alpha[i] = P(proposal i+1 accepted |
  proposals 1..i were); the last entry repeats for longer lookaheads. Three kinds of proposer
  (``PROPOSERS``): ``hit`` (draft tokens served from the speculation cache, and SD's draft),
  ``jit`` (the draft decoding a missed row on demand) and ``fast`` (the cheap fallback speculator).
- accepted length A in 0..k: P(A >= j) = prod_{i<j} alpha[i].
- run length L: how many draft tokens in a row the target accepted before the next one (a run
  ends at a rejection and goes on through a rank-1 bonus after a fully accepted step). Measured
  acceptance by run length (``run_alpha_for``) makes a step's acceptance depend on where the
  previous step left the run, so it does not depend on k; position i of a step starting at run
  L has rate run_alpha[L + i].
- coverage c_j(F): the chance that the token following A = j accepted proposals (the bonus) is
  among the draft's top-F candidates at position j. For j < k the speculated token is excluded
  (it was rejected); for j = k nothing is excluded. Power law 1 - c(F) = beta F^-r, or measured
  tables c(1..L) that take precedence inside their range. c_j(0) = 0.
- rank: the bonus token's 1-based rank among those candidates; P(rank <= F) = c_j(F).
- rank buckets (``rank_bucket``: 1, 2-3, 4-7, ...): an SSD row's first proposal may depend on
  the bucket of the bonus rank before it (``run_alpha_rank`` for the draft's rows at run 0,
  ``alpha_fast_rank`` for the fast speculator's), since a deep rank marks text the draft
  did not expect.

On a row whose proposals came from the fast speculator, the rejected token was not the draft's
choice, so the draft's top candidate may well be the bonus: there the rank is 1 with probability
alpha_hit[j] (the draft's top token is the target's), otherwise 1 + a rank drawn as after a draft
rejection, i.e. c_j^fast(F) = alpha_j + (1 - alpha_j) c_j(F - 1) (an approximation exact at T = 0
when the fast token differs from the draft's top token).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ssdsim._schema import SchemaError
from ssdsim.profile import (
    FAST_TABLE_FIELDS,
    RUN_ALPHA_FIELDS,
    Chance,
    ChancePoint,
    Coverage,
    TemperatureModel,
)

PROPOSERS = ("hit", "jit", "fast")
POINT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ChanceAt:
    """Concrete acceptance and coverage for one run (one temperature and rescale)."""

    temperature: float
    rescale: float
    alpha: tuple[float, ...]
    alpha_jit: tuple[float, ...]
    alpha_fast: tuple[float, ...]
    coverage: Coverage
    source: str = "model"
    seq_spread: tuple[float, ...] = ()
    coverage_fast: Coverage | None = None
    seq_spread_fast: tuple[float, ...] = ()
    run_alpha_sd: tuple[float, ...] = ()
    run_alpha_hit: tuple[float, ...] = ()
    run_alpha_jit: tuple[float, ...] = ()
    run_alpha_rank: tuple[float, ...] = ()
    alpha_fast_rank: tuple[float, ...] = ()
    run_spread: tuple[float, ...] = ()
    alpha_fast_first: tuple[float, ...] = ()
    alpha_fast_full: tuple[float, ...] = ()
    alpha_fast_part: tuple[float, ...] = ()
    alpha_fast_draft: tuple[float, ...] = ()
    coverage_spread: tuple[float, ...] = ()
    alpha_fast_draft_rank: tuple[tuple[float, ...], ...] = ()
    alpha_fast_nomatch: tuple[float, ...] = ()
    fast_nomatch: tuple[float, ...] = ()

    def run_alpha_for(self, proposer: str) -> tuple[float, ...]:
        """Acceptance by run length (``ChancePoint.run_alpha_sd``) of ``sd``, ``hit`` or ``jit``
        proposals; a kind that was not measured borrows a measured one (SD and hits each other's,
        jit SD's, then hits'); empty for the fast speculator or when none was measured."""
        order = {
            "sd": (self.run_alpha_sd, self.run_alpha_hit),
            "hit": (self.run_alpha_hit, self.run_alpha_sd),
            "jit": (self.run_alpha_jit, self.run_alpha_sd, self.run_alpha_hit),
        }.get(proposer, ())
        return next((a for a in order if a), ())

    def spread_for(self, proposer: str) -> tuple[float, ...]:
        """Per-sequence rejection multipliers of a proposer kind (empty: sequences alike)."""
        return self.seq_spread_fast if proposer == "fast" else self.seq_spread

    def alpha_for(self, proposer: str) -> tuple[float, ...]:
        """Acceptance per position of a proposer kind (``hit``, ``jit`` or ``fast``)."""
        return {"hit": self.alpha, "jit": self.alpha_jit, "fast": self.alpha_fast}[proposer]


# -- acceptance -------------------------------------------------------------------------------
def position_rates(alpha: Sequence[float], k: int) -> np.ndarray:
    """Conditional acceptance at positions 0..k-1 (the last given entry repeats)."""
    a = list(alpha)
    return np.array([a[min(i, len(a) - 1)] for i in range(k)], dtype=float)


def accept_pmf(alpha: Sequence[float], k: int) -> np.ndarray:
    """P(A = j), j = 0..k, for conditional rates ``alpha`` (i.i.d. a: a^j (1-a) for j < k, a^k)."""
    rates = position_rates(alpha, k)
    survive = np.concatenate(([1.0], np.cumprod(rates)))  # P(A >= j)
    pmf = survive.copy()
    pmf[:-1] -= survive[1:]
    return pmf


def spread_alpha(alpha: Sequence[float], k: int, r: float) -> tuple[float, ...]:
    """Acceptance per position of a sequence whose rejection chances are r times the pooled."""
    rates = position_rates(alpha, k)
    return tuple(float(max(0.0, 1.0 - (1.0 - a) * r)) for a in rates)


def odds_alpha(alpha: Sequence[float], r: float) -> tuple[float, ...]:
    """Acceptance rates of a sequence whose odds of rejection are r times the given rates'
    (``ChancePoint.run_spread``): reject q -> q r / (1 - q + q r)."""
    return tuple(float(a / (a + (1.0 - a) * r)) if a + (1.0 - a) * r > 0 else 0.0 for a in alpha)


def odds_coverage(c: Any, m: float) -> np.ndarray:
    """Coverage of a sequence whose odds of a miss, (1 - c) / c, are m times the given
    (``ChancePoint.coverage_spread``): c -> c / (c + (1 - c) m); 0 and 1 stay."""
    c = np.asarray(c, dtype=float)
    den = c + (1.0 - c) * m
    return np.where(den > 0, c / np.where(den > 0, den, 1.0), 0.0)


def accept_cdf(alpha: Sequence[float], k: int) -> np.ndarray:
    """P(A <= j), j = 0..k, with the last entry exactly 1 (for inverse-CDF sampling)."""
    cdf = np.cumsum(accept_pmf(alpha, k))
    cdf[-1] = 1.0
    return cdf


def run_accept_cdfs(run_alpha: Sequence[float], k: int) -> np.ndarray:
    """(H, k+1) P(A <= j) of a step that starts at run length L = 0..H-1 (H = len(run_alpha);
    longer runs behave as H-1): position i has rate run_alpha[L + i]."""
    h = len(run_alpha)
    return np.stack(
        [accept_cdf([run_alpha[min(start + i, h - 1)] for i in range(k)], k) for start in range(h)]
    )


def rank_bucket(rank: int, buckets: int) -> int:
    """Bucket of a bonus rank (``ChancePoint.run_alpha_rank``): 1 -> 0, 2-3 -> 1, 4-7 -> 2, ...
    (powers of two), capped at ``buckets - 1``, which also holds rank 0 (beyond the depth)."""
    return buckets - 1 if rank <= 0 else min(rank.bit_length() - 1, buckets - 1)


def rank_bucket_edges(buckets: int) -> np.ndarray:
    """The last rank of each bucket but the last (1, 3, 7, 15, ...): c_j at these ranks splits
    the rank stream's uniform into buckets."""
    return np.array([2 ** (b + 1) - 1 for b in range(buckets - 1)], dtype=np.int64)


def mean_accepted_len(alpha: Sequence[float], k: int) -> float:
    """E[A] = sum_{j>=1} P(A >= j)."""
    return float(np.cumprod(position_rates(alpha, k)).sum())


def alpha_from_accepted_dist(pmf_or_counts: Sequence[float]) -> tuple[float, ...]:
    """Conditional per-position rates from an empirical distribution of A over 0..k.

    ``pmf_or_counts[j]`` is the probability (or count) of accepting exactly j proposals.
    alpha[i] = P(A >= i+1) / P(A >= i); a position never reached repeats the previous rate.
    """
    w = np.asarray(pmf_or_counts, dtype=float)
    if w.ndim != 1 or len(w) < 2 or (w < 0).any() or w.sum() <= 0:
        raise SchemaError(
            f"accepted-length distribution: got {list(pmf_or_counts)!r}, expected k+1 >= 2 "
            "non-negative counts or probabilities with a positive sum"
        )
    survive = w[::-1].cumsum()[::-1] / w.sum()  # P(A >= j)
    rates: list[float] = []
    for i in range(len(w) - 1):
        rates.append(
            float(survive[i + 1] / survive[i]) if survive[i] > 0 else (rates[-1] if rates else 0.0)
        )
    return tuple(rates)


# -- coverage ---------------------------------------------------------------------------------
def _power_law(beta: float, r: float, fan: np.ndarray) -> np.ndarray:
    f = np.maximum(fan, 1).astype(float)
    return np.where(fan >= 1, np.clip(1.0 - beta * f ** (-r), 0.0, 1.0), 0.0)


def _with_table(table: tuple[float, ...], law: np.ndarray, fan: np.ndarray) -> np.ndarray:
    if not table:
        return law
    t = np.asarray(table, dtype=float)
    inside = np.clip(fan, 1, len(t)) - 1
    beyond = np.maximum(law, t[-1])  # stay non-decreasing past the measured range
    return np.where(fan < 1, 0.0, np.where(fan <= len(t), t[inside], beyond))


def coverage(cov: Coverage, j: int, k: int, fan: Any) -> np.ndarray:
    """c_j(F): chance that the bonus after j accepted proposals is among the top-F candidates."""
    fan = np.asarray(fan, dtype=np.int64)
    if j >= k:
        r = cov.r_bonus if cov.r_bonus is not None else cov.r
        return _with_table(cov.bonus_table, _power_law(cov.beta_bonus, r, fan), fan)
    beta = cov.beta_reject[min(j, len(cov.beta_reject) - 1)]
    table = cov.reject_tables[min(j, len(cov.reject_tables) - 1)] if cov.reject_tables else ()
    return _with_table(table, _power_law(beta, cov.r, fan), fan)


def coverage_for(at: ChanceAt, proposer: str, j: int, k: int, fan: Any) -> np.ndarray:
    """c_j(F) on a row whose proposals came from ``proposer`` (see the module docstring for fast).

    Fast rows use the measured ``ChanceAt.coverage_fast`` (by accepted length) when there is one.
    """
    if proposer == "fast" and at.coverage_fast is not None:
        cov = at.coverage_fast
        table = cov.reject_tables[min(j, len(cov.reject_tables) - 1)] if cov.reject_tables else ()
        fan = np.asarray(fan, dtype=np.int64)
        return _with_table(table, _power_law(cov.beta_reject[0], cov.r, fan), fan)
    if proposer != "fast" or j >= k:
        return coverage(at.coverage, j, k, fan)
    fan = np.asarray(fan, dtype=np.int64)
    a = position_rates(at.alpha, k)[j]
    below = coverage(at.coverage, j, k, np.maximum(fan - 1, 0))
    return np.where(fan >= 1, a + (1.0 - a) * below, 0.0)


def hit_thresholds(at: ChanceAt, proposer: str, k: int, fan_out: Sequence[int]) -> np.ndarray:
    """c_j(fan_out[j]) for j = 0..k: the next request hits iff a uniform draw falls below it."""
    return np.array([float(coverage_for(at, proposer, j, k, fan_out[j])) for j in range(k + 1)])


def hit_prob(at: ChanceAt, proposer: str, k: int, fan_out: Sequence[int]) -> float:
    """P(next request hits) = sum_j P(A = j) c_j(F_j) for proposals from ``proposer``."""
    return float(accept_pmf(at.alpha_for(proposer), k) @ hit_thresholds(at, proposer, k, fan_out))


def rank_cdf_table(at: ChanceAt, proposer: str, k: int, depth: int) -> np.ndarray:
    """c_j(F) for j = 0..k (rows) and F = 1..depth (columns), for sampling bonus ranks."""
    fans = np.arange(1, depth + 1)
    return np.stack([coverage_for(at, proposer, j, k, fans) for j in range(k + 1)])


def sample_rank(table: np.ndarray, j: Any, v: Any) -> np.ndarray:
    """Bonus ranks for accepted lengths ``j`` and uniforms ``v``: min F with v < c_j(F); 0 past depth.

    Consistent with ``hit_thresholds``: rank <= F exactly when v < c_j(F).
    """
    j = np.atleast_1d(np.asarray(j))
    v = np.atleast_1d(np.asarray(v))
    below = (table[j] <= v[:, None]).sum(axis=1)
    return np.where(below < table.shape[1], below + 1, 0)


# -- temperature and rescale -------------------------------------------------------------------
def _scale_alpha(alpha: tuple[float, ...], factor: float) -> tuple[float, ...]:
    return tuple(float(min(1.0, max(0.0, a * factor))) for a in alpha)


def _scale_miss(cov: Coverage, reject: float, bonus: float) -> Coverage:
    """Multiply every miss chance 1 - c(F) (power-law beta and tables) by a factor, capped at 1."""

    def table(t: tuple[float, ...], f: float) -> tuple[float, ...]:
        return tuple(1.0 - min(1.0, (1.0 - c) * f) for c in t)

    return dataclasses.replace(
        cov,
        beta_reject=tuple(min(1.0, b * reject) for b in cov.beta_reject),
        beta_bonus=min(1.0, cov.beta_bonus * bonus),
        reject_tables=tuple(table(t, reject) for t in cov.reject_tables),
        bonus_table=table(cov.bonus_table, bonus),
    )


def model_factors(tm: TemperatureModel, temperature: float, rescale: float) -> dict[str, float]:
    """The parametric model's multipliers at (T, C), relative to greedy with C = 1.

    With t = min(T, 2) and g = min(T, 1) (the rescale acts only when sampling, fully from T = 1):
        draft acceptance x (1 - alpha_temp_slope t) (1 - alpha_rescale_slope (1 - C) g)
        fast acceptance  x (1 - alpha_temp_slope t)                 (it does not sample from q')
        reject miss      x (1 + beta_temp_slope t) C^(beta_rescale_exponent g)
        bonus miss       x (1 + beta_temp_slope t)                  (the bonus after k accepts is from p)
    Coverage misses 1 - c(F) (beta and measured tables alike) are multiplied, capped at 1.
    """
    t, g = min(temperature, 2.0), min(temperature, 1.0)
    temp_alpha = 1.0 - tm.alpha_temp_slope * t
    temp_beta = 1.0 + tm.beta_temp_slope * t
    return {
        "alpha": temp_alpha * (1.0 - tm.alpha_rescale_slope * (1.0 - rescale) * g),
        "alpha_fast": temp_alpha,
        "reject": temp_beta * rescale ** (tm.beta_rescale_exponent * g),
        "bonus": temp_beta,
    }


def _nearest_point(
    points: tuple[ChancePoint, ...], temperature: float, rescale: float
) -> ChancePoint | None:
    if not points:
        return None
    return min(
        points,
        key=lambda p: (
            abs(p.temperature - temperature) + abs(p.rescale - rescale),
            p.temperature,
            p.rescale,
        ),
    )


def _anchor(chance: Chance, point: ChancePoint | None) -> dict[str, Any]:
    """The values the model moves from: a measured point (gaps filled) or the greedy base."""
    if point is None:
        jit = chance.alpha_after_miss if chance.alpha_after_miss is not None else chance.alpha
        return {
            "alpha": chance.alpha,
            "jit": jit,
            "fast": chance.alpha_fast,
            "cov": chance.coverage,
        }
    have = model_factors(chance.temperature_model, point.temperature, point.rescale)
    fast = point.alpha_fast
    cov = point.coverage
    return {
        "alpha": point.alpha,
        "jit": point.alpha_after_miss if point.alpha_after_miss is not None else point.alpha,
        "fast": fast if fast is not None else _scale_alpha(chance.alpha_fast, have["alpha_fast"]),
        "cov": cov
        if cov is not None
        else _scale_miss(chance.coverage, have["reject"], have["bonus"]),
    }


def chance_at(chance: Chance, temperature: float, rescale: float = 1.0) -> ChanceAt:
    """Resolve per-position acceptance and coverage for one run.

    A measured ChancePoint at exactly (T, C) is used as is. Otherwise the parametric model
    (``model_factors``) is applied relative to the nearest measured point (distance |dT| + |dC|)
    or, with no points, to the greedy base values. A point without jit acceptance uses its
    alpha; without coverage, the base values moved by the model to the point's (T, C). The fast
    speculator's acceptance, which no rescale affects, comes from the nearest point that
    measured it (moved by the model in T only), else from the base values.
    """
    if temperature < 0 or not 0 < rescale <= 1:
        raise SchemaError(
            f"chance_at: got temperature={temperature!r}, rescale={rescale!r}; "
            "expected T >= 0, C in (0, 1]"
        )
    want = model_factors(chance.temperature_model, temperature, rescale)
    p = _nearest_point(chance.points, temperature, rescale)
    if p is None:
        rel, source = want, "model"
    elif abs(p.temperature - temperature) + abs(p.rescale - rescale) <= POINT_TOLERANCE:
        rel, source = {n: 1.0 for n in want}, "point"
    else:
        have = model_factors(chance.temperature_model, p.temperature, p.rescale)
        rel = {n: (want[n] / have[n] if have[n] > 0 else want[n]) for n in want}
        source = "point+model"
    anchor = _anchor(chance, p)
    fast_point = _nearest_point(
        tuple(q for q in chance.points if q.alpha_fast is not None), temperature, rescale
    )
    fast_tables = p if p is not None and p.alpha_fast is not None else None
    if fast_point is not None and (p is None or p.alpha_fast is None):
        fast_tables = fast_point
        # the fast speculator's proposals do not depend on the rescale C: take its acceptance
        # from the nearest point that measured it, moved by the model in T only
        have_t = model_factors(chance.temperature_model, fast_point.temperature, 1.0)
        anchor["fast"] = fast_point.alpha_fast
        rel = {
            **rel,
            "alpha_fast": want["alpha_fast"] / have_t["alpha_fast"]
            if have_t["alpha_fast"] > 0
            else want["alpha_fast"],
        }
    return ChanceAt(
        temperature=float(temperature),
        rescale=float(rescale),
        alpha=_scale_alpha(anchor["alpha"], rel["alpha"]),
        alpha_jit=_scale_alpha(anchor["jit"], rel["alpha"]),
        alpha_fast=_scale_alpha(anchor["fast"], rel["alpha_fast"]),
        coverage=_scale_miss(anchor["cov"], rel["reject"], rel["bonus"]),
        source=source,
        seq_spread=p.seq_spread if p is not None else (),
        coverage_fast=p.coverage_fast if p is not None and source == "point" else None,
        seq_spread_fast=p.seq_spread_fast if p is not None else (),
        run_spread=p.run_spread if p is not None else (),
        coverage_spread=p.coverage_spread if p is not None else (),
        alpha_fast_draft_rank=tuple(
            _scale_alpha(row, rel["alpha_fast"]) for row in fast_tables.alpha_fast_draft_rank
        )
        if fast_tables is not None
        else (),
        fast_nomatch=fast_tables.fast_nomatch if fast_tables is not None else (),
        **{
            n: _scale_alpha(getattr(fast_tables, n), rel["alpha_fast"])
            if fast_tables is not None and getattr(fast_tables, n)
            else ()
            for n in FAST_TABLE_FIELDS
        },
        **{
            n: _scale_alpha(getattr(p, n), rel["alpha"]) if p is not None else ()
            for n in RUN_ALPHA_FIELDS
        },
    )
