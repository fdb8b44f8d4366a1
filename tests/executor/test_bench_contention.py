"""studies/bench_contention.py on the smoke pair: every role timed under every condition."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "studies"))
    import bench_contention

    return bench_contention


def test_every_role_and_condition_reported(bench, smoke_cache, caplog):
    caplog.set_level(logging.INFO, logger="bench_contention")
    argv = ["--pair", "smoke", "--device", "cpu", "--rounds", "3", "--forwards", "1"]
    assert bench.main(argv) == 0
    rows = [r.getMessage() for r in caplog.records if "ms/forward" in r.getMessage()]
    assert len(rows) == 6
    for role in ("target", "draft"):
        for cond in bench.CONDITIONS:
            (row,) = [r for r in rows if r.startswith(f"{role:6s} {cond} ")]
            median = float(re.search(r"median +([0-9.]+)", row).group(1))
            assert median > 0
            assert ("ratio to alone" in row) == (cond != "alone")


def test_bad_arguments_refused_before_loading(bench):
    with pytest.raises(SystemExit):
        bench.main(["--rounds", "1"])
