"""Fit the chance model to tallied traces: one ChancePoint per (temperature, rescale).

Acceptance: the conditional rate per position, separately for cache-hit (and SD) proposals,
jit proposals on missed rows and the fast speculator (``Tally.alpha``); and by run length for
SD rows, hits and jit rows (``Tally.run_alpha``), and SSD's first proposal at run 0 by the
bonus rank before it, and the fast speculator's (``Tally.run_alpha_rank``). Coverage: empirical
tables c_j(F), F = 1..depth, from the bonus ranks of draft-proposed rows (hit and jit), one per
position after a rejection and one for the bonus after full acceptance, plus the power law
1 - c_j(F) = beta_j F^-r (one r shared by the rejection positions; its own beta and r for the
bonus), fitted by weighted linear least squares on log(1 - c) (``scipy.optimize.lsq_linear``,
beta <= 1, r > 0; weights 1 / the binomial standard error of the log). Positions with fewer
than ``min_samples`` rows get the fitted law as their table. Never torch or the executor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear, minimize_scalar

from ssdsim.calibrate.tally import Tally, coverage_table
from ssdsim.chance import coverage
from ssdsim.profile import FAST_CONTEXTS, ChancePoint, Coverage

R_MIN = 1e-3


@dataclass(frozen=True)
class PowerLaw:
    """1 - c_j(F) = betas[j] * F^-r, and the fit's residual (max |c_table - c_law| over rows)."""

    betas: tuple[float, ...]
    r: float
    max_residual: float

    def table(self, j: int, depth: int) -> np.ndarray:
        f = np.arange(1, depth + 1, dtype=float)
        return np.clip(1.0 - self.betas[min(j, len(self.betas) - 1)] * f ** (-self.r), 0.0, 1.0)


def fit_power_law(tables: list[np.ndarray], counts: list[int]) -> PowerLaw:
    """Shared-exponent power law for the miss chance of several positions' tables.

    Positions without samples take the previous position's beta (0.5 for the first); a
    position whose rows were all covered at F = 1 gets beta = 0.5 / its count.
    """
    rows, rhs = [], []
    n_pos = len(tables)
    for j, (cdf, n) in enumerate(zip(tables, counts, strict=True)):
        for f, c in enumerate(cdf, start=1):
            miss = 1.0 - c
            if n == 0 or miss <= 0.0 or miss >= 1.0:
                continue
            w = np.sqrt(n * miss / (1.0 - miss))
            row = np.zeros(n_pos + 1)
            row[j], row[-1] = w, -w * np.log(f)
            rows.append(row)
            rhs.append(w * np.log(miss))
    log_beta = np.full(n_pos, np.log(0.5))
    r = 1.0
    if rows:
        lo = np.r_[np.full(n_pos, -50.0), R_MIN]
        hi = np.r_[np.zeros(n_pos), 20.0]
        res = lsq_linear(np.array(rows), np.array(rhs), bounds=(lo, hi))
        log_beta, r = res.x[:-1], float(res.x[-1])
    betas: list[float] = []
    for j, (cdf, n) in enumerate(zip(tables, counts, strict=True)):
        fitted = any(r_[j] != 0 for r_ in rows)
        if fitted:
            betas.append(float(np.exp(log_beta[j])))
        elif n > 0 and cdf.size and cdf[0] >= 1.0:
            betas.append(0.5 / n)
        else:
            betas.append(betas[-1] if betas else 0.5)
    law = PowerLaw(tuple(betas), r, 0.0)
    resid = [
        float(np.max(np.abs(cdf - law.table(j, len(cdf)))))
        for j, (cdf, n) in enumerate(zip(tables, counts, strict=True))
        if n > 0 and cdf.size
    ]
    return PowerLaw(tuple(betas), r, max(resid, default=0.0))


@dataclass(frozen=True)
class PointFit:
    """A fitted ChancePoint and what to print about it."""

    point: ChancePoint
    reject_law: PowerLaw | None
    bonus_law: PowerLaw | None
    reject_counts: tuple[int, ...]
    bonus_count: int


def _draft_ranks(tally: Tally) -> tuple[dict[int, list[int]], list[int]]:
    reject: dict[int, list[int]] = {}
    for kind in ("hit", "jit"):
        for j, ranks in tally.reject_ranks[kind].items():
            reject.setdefault(j, []).extend(ranks)
    return reject, tally.bonus_ranks["hit"] + tally.bonus_ranks["jit"]


def fit_coverage(
    tally: Tally, depth: int, min_samples: int
) -> tuple[Coverage, PowerLaw, PowerLaw, list[int], int] | None:
    """Coverage tables and power laws from a tally's ranks (None when no ranks were recorded)."""
    reject, bonus = _draft_ranks(tally)
    if not tally.ranks_recorded or not (reject or bonus):
        return None
    deepest = max((max(r, default=0) for r in [*reject.values(), bonus]), default=0)
    depth = max(1, min(depth, deepest))  # past the deepest recorded rank a table says nothing
    positions = max(reject, default=-1) + 1
    counts = [len(reject.get(j, [])) for j in range(positions)]
    emp = [coverage_table(reject.get(j, []), depth) for j in range(positions)]
    law = fit_power_law(emp, counts)
    bonus_emp = coverage_table(bonus, depth)
    blaw = fit_power_law([bonus_emp], [len(bonus)])
    tables = tuple(
        tuple(emp[j] if counts[j] >= min_samples else law.table(j, depth)) for j in range(positions)
    )
    bonus_table = tuple(bonus_emp if len(bonus) >= min_samples else blaw.table(0, depth))
    cov = Coverage(
        beta_reject=law.betas or (0.5,),
        r=law.r,
        beta_bonus=min(1.0, blaw.betas[0]),
        r_bonus=blaw.r,
        reject_tables=tables,
        bonus_table=bonus_table,
    )
    return cov, law, blaw, counts, len(bonus)


def fit_fast_coverage(tally: Tally, depth: int, min_samples: int) -> Coverage | None:
    """Measured c_j(F) of fast-speculator rows by accepted length j (positions with enough rows;
    the last such table stands for later ones), with a power law fitted to them."""
    if not tally.ranks_recorded:
        return None
    ranks = tally.fast_ranks
    js = [j for j in sorted(ranks) if len(ranks[j]) >= min_samples]
    if not js:
        return None
    positions = max(js) + 1
    emp, counts = [], []
    for j in range(positions):
        lower = [i for i in js if i <= j]
        use = lower[-1] if lower else js[0]
        emp.append(coverage_table(ranks[use], depth))
        counts.append(len(ranks[use]))
    law = fit_power_law(emp, counts)
    return Coverage(
        beta_reject=(min(1.0, max(law.betas or (0.5,))),),
        r=law.r,
        beta_bonus=min(1.0, max(law.betas or (0.5,))),
        reject_tables=tuple(tuple(t) for t in emp),
    )


def _seq_estimate(alpha: tuple[float, ...], reached: list[int], passed: list[int]):
    """Maximum-likelihood r of one sequence and its sampling variance (inverse curvature)."""
    rej = 1.0 - np.array([alpha[min(i, len(alpha) - 1)] for i in range(len(reached))])
    n, ok = np.asarray(reached, dtype=float), np.asarray(passed, dtype=float)
    top = 1.0 / max(float(rej.max()), 1e-6)

    def nll(r: float) -> float:
        p = np.clip(rej * r, 1e-9, 1 - 1e-9)
        return float(-(ok * np.log1p(-p) + (n - ok) * np.log(p)).sum())

    r = float(minimize_scalar(nll, bounds=(0.01, top), method="bounded").x)
    e = 1e-3 * max(r, 0.05)
    curv = (nll(r + e) - 2 * nll(r) + nll(max(r - e, 1e-4))) / e**2
    return r, (1.0 / curv if curv > 0 else 0.0)


def fit_seq_spread(
    alpha: tuple[float, ...], per_seq: dict, min_reached: int = 5
) -> tuple[float, ...]:
    """How sequences differ: per sequence (at least ``min_reached`` proposals judged) the
    maximum-likelihood r of P(reject at j) = min(1, (1 - alpha[j]) r), shrunk toward their mean
    by the share of their variance that sampling noise explains (so that a group of alike
    sequences gets no spread from noise alone)."""
    est = [
        _seq_estimate(alpha, reached, passed)
        for reached, passed in per_seq.values()
        if reached and reached[0] >= min_reached
    ]
    if len(est) < 2:
        return ()
    r = np.array([x for x, _ in est])
    between = float(r.var())
    noise = float(np.mean([v for _, v in est]))
    keep = max(0.0, 1.0 - noise / between) if between > 0 else 0.0
    if keep == 0.0:
        return ()
    out = r.mean() + keep * (r - r.mean())
    return tuple(sorted(round(float(x), 4) for x in np.maximum(out, 0.01)))


LOGIT_BOUND = 9.0  # |log-odds| cap: a cell or sequence that never (or always) rejected


def _logit_fit(
    n: np.ndarray, bad: np.ndarray, offset: np.ndarray, axis: int, steps: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood log-odds per row (axis 1) or column (axis 0) of rejections ``bad``
    out of ``n``, given every entry's known ``offset`` (logistic fixed effects, Newton with
    |value| capped at ``LOGIT_BOUND``), and each one's sampling variance (inverse Fisher
    information)."""
    width = n.shape[0] if axis == 1 else n.shape[1]
    x = np.zeros(width)
    info = np.zeros(width)
    for _ in range(steps):
        eta = offset + (x[:, None] if axis == 1 else x[None, :])
        p = 1.0 / (1.0 + np.exp(-eta))
        grad = (bad - n * p).sum(axis=axis)
        info = (n * p * (1.0 - p)).sum(axis=axis)
        x = np.clip(x + grad / np.maximum(info, 1e-9), -LOGIT_BOUND, LOGIT_BOUND)
    return x, np.where(info > 1e-9, 1.0 / np.maximum(info, 1e-9), np.inf)


@dataclass(frozen=True)
class RunSpread:
    """Run tables fitted jointly with a per-sequence multiplier (``ChancePoint.run_spread``)."""

    tables: dict[str, tuple[float, ...]]
    rank: tuple[float, ...]
    spread: tuple[float, ...]


def fit_run_spread(
    tally: Tally,
    tables: dict[str, tuple[float, ...]],
    rank: tuple[float, ...],
    min_reached: int = 10,
    rounds: int = 30,
) -> RunSpread:
    """Run tables and rank table (``Tally.run_tables``, ``run_alpha_rank("draft")``, cells as
    pooled there) refitted as a typical sequence's rates, jointly with each sequence's
    multiplier r on its odds of rejection: odds(reject in cell c) = odds_c r_s.

    Run tables alone carry a sequence's recent past but not what its prompt is like: loop 11's
    SD k = 8 validation runs (12 prompts, T = 0) accepted 1.5 to 6.3 tokens per step by
    sequence, the run tables simulated 2.5 to 4.6. A logistic model with a fixed effect per
    cell and per sequence, fitted by alternating Newton steps (geometric mean r = 1); each
    log r shrunk toward 0 by its own sampling variance against the spread between sequences
    (empirical Bayes, so that alike sequences get no spread from noise). The spread keeps the
    r of sequences with at least ``min_reached`` run proposals. The rank cells are refitted
    with the final r (they count first proposals that the run cells also hold). No spread
    between sequences: the tables unchanged and an empty spread.
    """
    width = max((len(t) for t in tables.values()), default=0)
    if not tables or len(tally.per_seq_run) < 2:
        return RunSpread(tables, rank, ())

    def run_cell(key: tuple[str, int]) -> tuple[str, int] | None:
        kind, at = key
        if kind == "rank":
            return None
        if at == 0 or width == 1:
            return (kind, 0) if kind in tables else None
        return ("run", min(at, width - 1))

    cells = sorted({run_cell(c) for seq in tally.per_seq_run.values() for c in seq} - {None})
    column = {c: i for i, c in enumerate(cells)}
    seqs = list(tally.per_seq_run.values())
    n = np.zeros((len(seqs), len(cells)))
    bad = np.zeros_like(n)
    for s, counts in enumerate(seqs):
        for key, (reached, passed) in counts.items():
            if (c := run_cell(key)) is not None:
                n[s, column[c]] += reached
                bad[s, column[c]] += reached - passed
    keep = n.sum(axis=1) > 0
    n, bad = n[keep], bad[keep]
    known = n.sum(axis=1) >= min_reached
    if known.sum() < 2 or not 0 < bad.sum() < n.sum():  # too few, or nothing to tell apart
        return RunSpread(tables, rank, ())
    # one rejection and one pass at the pooled odds per sequence keep a sequence that never
    # (or always) rejected finite, with a finite variance
    pooled = float(np.log(bad.sum() / max(n.sum() - bad.sum(), 1.0)))
    n_seq = np.hstack([n, np.full((len(n), 1), 2.0)])
    bad_seq = np.hstack([bad, np.ones((len(n), 1))])
    log_r = np.zeros(len(n))
    for _ in range(rounds):
        cell_odds, _ = _logit_fit(n, bad, np.broadcast_to(log_r[:, None], n.shape), axis=0)
        offset = np.broadcast_to(np.append(cell_odds, pooled)[None, :], n_seq.shape)
        raw, var = _logit_fit(n_seq, bad_seq, offset, axis=1)
        mean = float(raw[known].mean())
        between = max(0.0, float(raw[known].var()) - float(np.mean(var[known])))
        log_r = between / (between + var) * (raw - mean) if between > 0 else np.zeros(len(n))
        log_r -= log_r[known].mean()
    if np.allclose(log_r, 0.0):
        return RunSpread(tables, rank, ())
    cell_odds, _ = _logit_fit(n, bad, np.broadcast_to(log_r[:, None], n.shape), axis=0)
    rate = {c: float(1.0 / (1.0 + np.exp(cell_odds[column[c]]))) for c in cells}
    new_tables = {
        kind: tuple(rate.get(run_cell((kind, at)), a) for at, a in enumerate(table))
        for kind, table in tables.items()
    }
    r = np.exp(log_r[known])
    spread = tuple(sorted(round(float(x), 4) for x in r))
    return RunSpread(new_tables, _rank_with_spread(tally, rank, log_r, keep), spread)


def _rank_with_spread(
    tally: Tally,
    rank: tuple[float, ...],
    log_r: np.ndarray,
    keep: np.ndarray,
    min_reached: int = 100,
) -> tuple[float, ...]:
    """The draft rank table refitted given the sequences' log multipliers, its buckets pooled
    as ``Tally.run_alpha_rank`` pooled them (with the same ``min_reached``): those before the
    first well-counted bucket with it, those from the last entry on together."""
    if not rank:
        return rank
    reached = tally.rank_reached["draft"]
    first = next((i for i, x in enumerate(reached) if x >= min_reached), 0)

    def cell(bucket: int) -> int:
        return min(max(bucket, first), len(rank) - 1)

    seqs = [counts for counts, k in zip(tally.per_seq_run.values(), keep, strict=True) if k]
    n = np.zeros((len(seqs), len(rank)))
    bad = np.zeros_like(n)
    for s, counts in enumerate(seqs):
        for (kind, at), (was_reached, passed) in counts.items():
            if kind == "rank":
                n[s, cell(at)] += was_reached
                bad[s, cell(at)] += was_reached - passed
    odds, _ = _logit_fit(n, bad, np.broadcast_to(log_r[:, None], n.shape), axis=0)
    return tuple(
        float(1.0 / (1.0 + np.exp(odds[cell(i)]))) if n[:, cell(i)].sum() > 0 else a
        for i, a in enumerate(rank)
    )


COVERAGE_EDGES = (1, 3, 7)  # the fan-outs at which a sequence's ranks are judged


def _miss_chance(cov: Coverage, j: int, fan: int) -> float:
    """1 - c_j(F) of ``cov`` (j = -1: the bonus after every proposal), kept off 0 and 1."""
    c = float(coverage(cov, 1, 0, fan) if j < 0 else coverage(cov, j, j + 1, fan))
    return min(max(1.0 - c, 1e-4), 1.0 - 1e-4)


def fit_coverage_spread(tally: Tally, cov: Coverage, min_events: int = 10) -> tuple[float, ...]:
    """How sequences differ in coverage (``ChancePoint.coverage_spread``): per sequence with at
    least ``min_events`` ranked draft rows, the multiplier m on the odds of a miss under
    ``cov`` that fits its ranks, judged at F in ``COVERAGE_EDGES`` (each rank counted once
    over the three, so a sequence's information is not tripled); one miss-chance's worth of
    pseudo-events at the model's odds keeps a sequence that never missed finite. Each log m
    shrunk toward 0 by its own sampling variance against the spread between sequences
    (empirical Bayes, as ``fit_run_spread``), geometric mean 1; empty when what differs
    between sequences is noise alone."""
    seqs = [events for events in tally.per_seq_ranks.values() if events]
    if len(seqs) < 2:
        return ()
    cells = sorted({(j, f) for events in seqs for j, _ in events for f in COVERAGE_EDGES})
    column = {c: i for i, c in enumerate(cells)}
    n = np.zeros((len(seqs), len(cells)))
    bad = np.zeros_like(n)
    share = 1.0 / len(COVERAGE_EDGES)
    for s, events in enumerate(seqs):
        for j, rank in events:
            for f in COVERAGE_EDGES:
                n[s, column[(j, f)]] += share
                bad[s, column[(j, f)]] += share * (rank == 0 or rank > f)
    p = np.array([_miss_chance(cov, j, f) for j, f in cells])
    mean_p = float((n * p[None, :]).sum() / n.sum())
    n_seq = np.hstack([n, np.ones((len(seqs), 1))])
    bad_seq = np.hstack([bad, np.full((len(seqs), 1), mean_p)])
    logits = np.log(np.append(p, mean_p) / (1.0 - np.append(p, mean_p)))
    raw, var = _logit_fit(n_seq, bad_seq, np.broadcast_to(logits[None, :], n_seq.shape), axis=1)
    known = n.sum(axis=1) >= min_events
    if known.sum() < 2:
        return ()
    x, v = raw[known], var[known]
    between, center = _between_variance(x, v)
    if between == 0.0:
        return ()
    log_m = between / (between + v) * (x - center)
    log_m -= log_m.mean()
    return tuple(sorted(round(float(x), 4) for x in np.exp(log_m)))


def _between_variance(x: np.ndarray, var: np.ndarray) -> tuple[float, float]:
    """The variance between estimates ``x`` beyond their sampling variances ``var``, and their
    precision-weighted mean (DerSimonian-Laird: an estimate with a huge variance, such as a
    sequence that missed every time, weighs little, where a plain mean of the variances let
    one such swamp the rest)."""
    w = 1.0 / np.maximum(var, 1e-9)
    center = float((w * x).sum() / w.sum())
    q = float((w * (x - center) ** 2).sum())
    denom = float(w.sum() - (w**2).sum() / w.sum())
    between = max(0.0, (q - (len(x) - 1)) / denom) if denom > 0 else 0.0
    return between, center


def fit_point(
    tally: Tally, temperature: float, rescale: float, depth: int = 32, min_samples: int = 30
) -> PointFit | None:
    """The ChancePoint of one group (None when it has no draft proposals, e.g. AR only)."""
    alpha = tally.alpha("hit") or tally.alpha("jit")
    if alpha is None:
        return None
    fast = tally.alpha("fast")
    cov = fit_coverage(tally, depth, min_samples)
    runs = fit_run_spread(tally, tally.run_tables(), tally.run_alpha_rank("draft") or ())
    point = ChancePoint(
        temperature=temperature,
        rescale=rescale,
        alpha=alpha,
        alpha_after_miss=tally.alpha("jit"),
        alpha_fast=fast,
        coverage=cov[0] if cov else None,
        samples=tally.seqsteps,
        seq_spread=fit_seq_spread(alpha, tally.per_seq),
        coverage_fast=fit_fast_coverage(tally, depth, min_samples),
        seq_spread_fast=fit_seq_spread(fast, tally.per_seq_fast) if fast else (),
        **{f"run_alpha_{kind}": table for kind, table in runs.tables.items()},
        run_alpha_rank=runs.rank,
        run_spread=runs.spread,
        alpha_fast_rank=tally.run_alpha_rank("fast") or (),
        alpha_fast_draft_rank=tally.alpha_fast_draft_rank() if fast else (),
        fast_nomatch=tally.fast_nomatch() if fast else (),
        coverage_spread=fit_coverage_spread(tally, cov[0]) if cov else (),
        **{f"alpha_fast_{c}": tally.alpha_fast_context(c) if fast else () for c in FAST_CONTEXTS},
    )
    if cov is None:
        return PointFit(point, None, None, (), 0)
    return PointFit(point, cov[1], cov[2], tuple(cov[3]), cov[4])
