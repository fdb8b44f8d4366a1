"""Machine contention readings (Linux /proc/stat): sane values, and waiting gives up in time."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ssdsim.validate import machine

linux = pytest.mark.skipif(machine._cpu_ticks() is None, reason="needs /proc/stat")


@linux
def test_busy_cores_in_range():
    busy = machine.busy_cores(0.2)
    assert 0.0 <= busy <= (machine.os.cpu_count() or 1) + 1e-9


@linux
def test_contention_counts_the_child_as_mine():
    """A child that burns ~0.5 s of CPU is not "foreign" load: its CPU time leaves the busy
    cores. Judged against the busy cores of the same window, not an absolute bound, so that
    other work on a shared machine cannot fail it."""
    before_ticks, before_children = machine._cpu_ticks(), machine._children_cpu_s()
    with machine.Contention() as c:
        subprocess.run(
            [sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<0.5: pass"],
            check=True,
        )
    after_ticks, after_children = machine._cpu_ticks(), machine._children_cpu_s()
    assert c.wall_s >= 0.5
    child_cores = (after_children - before_children) / c.wall_s
    busy_cores = (after_ticks[0] - before_ticks[0]) / machine.CLOCK_TICKS / c.wall_s
    assert child_cores > 0.2  # it spun for 0.5 s of wall time
    assert c.foreign_cores is not None
    assert c.foreign_cores <= busy_cores - child_cores + 0.1  # the child's share left out
    assert c.niced_cores >= 0 and c.steal_cores >= 0


def test_wait_for_quiet_gives_up(monkeypatch):
    monkeypatch.setattr(machine, "busy_cores", lambda window_s=1.0: 5.0)
    t0 = time.monotonic()
    assert machine.wait_for_quiet(0.5, window_s=0.01, timeout_s=0.05) == 5.0
    assert time.monotonic() - t0 < 1.0
    monkeypatch.setattr(machine, "busy_cores", lambda window_s=1.0: 0.1)
    assert machine.wait_for_quiet(0.5, window_s=0.01, timeout_s=10) == 0.1
