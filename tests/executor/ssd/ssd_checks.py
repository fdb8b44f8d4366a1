"""Checks shared by the SSD tests: what a trace must satisfy, whatever the fallback."""

from __future__ import annotations

import itertools
from collections import defaultdict


def seq_outcomes(steps) -> dict[int, list]:
    """Every sequence's outcomes in step order."""
    by_seq = defaultdict(list)
    for step in steps:
        for o in step.seqs:
            by_seq[o.seq].append(o)
    return by_seq


def check_ranks_predict_hits(steps, policy) -> None:
    """The first request of a sequence misses; afterwards step t+1 hits exactly when step t's
    bonus rank is within the fan-out used at its accepted length (after-hit or after-miss list).
    This is what lets a calibration read the hit rate of any other fan-out off one trace."""
    for outs in seq_outcomes(steps).values():
        assert outs[0].cache_hit is False
        for o in outs:
            assert o.bonus_rank is not None and o.bonus_rank >= 1
        for prev, cur in itertools.pairwise(outs):
            fan = policy.fan_out if prev.cache_hit else policy.fan_out_miss
            assert cur.cache_hit == (prev.bonus_rank <= fan[prev.accepted_len]), (prev, cur)


def check_step_times(steps) -> None:
    """Request, response, verification and pre-speculation happen in order on one clock."""
    for s in steps:
        assert s.t_start_s <= s.request_s <= s.response_s <= s.verify_start_s
        assert s.verify_start_s <= s.verify_end_s <= s.t_end_s
        # the draft pre-speculates after it got the request (one perf_counter clock per host)
        assert s.request_s <= s.prespec_start_s <= s.prespec_end_s
