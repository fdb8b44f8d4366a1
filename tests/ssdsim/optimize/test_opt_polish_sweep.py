"""Polish neighbourhoods and sweep bookkeeping (no simulation)."""

from __future__ import annotations

import optuna
from optuna.trial import FixedTrial

from ssdsim import Policy
from ssdsim.optimize.polish import neighbours
from ssdsim.optimize.space import SearchSpace, allocate, params_for_policy, policy_from_trial
from ssdsim.optimize.sweep import auto_threshold, format_sweep


def uniform(k: int, budget: int, proposer: str, rescale: float) -> tuple[int, ...]:
    return allocate(budget, [1.0] * (k + 1))


def unit_move(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """b is a with one branch moved to another position."""
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) == 2


def test_every_neighbour_is_a_valid_policy_one_move_away():
    space = SearchSpace(batch_size=4, temperature=0.7, k_max=6, m_max=40)
    start = Policy(mode="ssd", k=3, fan_out=(5, 3, 2, 2), fan_out_miss=(8, 2, 1, 1), rescale=0.5)
    params = params_for_policy(start, space, uniform)
    moved = [
        policy_from_trial(FixedTrial(n), space, uniform) for n in neighbours(params, start, space)
    ]
    assert start.label() not in {p.label() for p in moved} and len(moved) > 20
    for p in moved:
        knobs = (
            p.k != start.k,
            p.budget != start.budget,
            p.fallback != start.fallback,
            p.rescale != start.rescale,
        )
        if any(knobs):
            assert sum(knobs) == 1, p.label()  # one knob at a time
            continue
        hit_moved, miss_moved = p.fan_out != start.fan_out, p.fan_out_miss != start.fan_out_miss
        one_branch = (unit_move(start.fan_out, p.fan_out) and not miss_moved) or (
            unit_move(start.fan_out_miss, p.fan_out_miss) and not hit_moved
        )
        family = p.fan_out_miss == p.fan_out or uniform(3, 12, "hit", 1.0) in (
            p.fan_out,
            p.fan_out_miss,
        )
        assert one_branch or family, p.label()
    assert any(p.fan_out == (4, 4, 2, 2) for p in moved)  # one branch from position 0 to 1
    assert any(
        p.fan_out_miss == (8, 2, 1, 1) and p.fan_out == (5, 3, 1, 3) for p in moved
    )  # to the bonus slot
    assert any(p.fallback == "fast" for p in moved) and any(p.k == 4 for p in moved)


def test_auto_threshold_is_where_fast_wins_from_then_on():
    jit, fast = {"jit": 2.0, "fast": 1.0}, {"jit": 1.0, "fast": 2.0}
    assert auto_threshold([(1, jit), (2, jit), (4, fast), (8, fast)]) == 4
    assert auto_threshold([(1, fast), (2, jit), (4, fast)]) == 4  # must hold at every larger size
    assert auto_threshold([(1, jit), (2, jit)]) is None
    assert auto_threshold([(1, fast), (2, fast)]) == 1


def test_format_sweep_prints_every_point():
    row = {
        "batch_size": 8, "temperature": 0.7, "best": "ssd k=3", "best_tokens_per_s": 120.0, "best_ssd_tokens_per_s": 120.0,
        "sd_tokens_per_s": 100.0, "ar_tokens_per_s": 50.0, "paper_default_tokens_per_s": 90.0, "best_ssd_hit_rate": 0.8,
    }  # fmt: skip
    text = format_sweep({"points": [row], "auto_threshold": {"0.7": 8}})
    assert "1.20" in text and "2.40" in text and "B>=8" in text


optuna.logging.set_verbosity(optuna.logging.WARNING)
