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
    with machine.Contention() as c:  # a child that burns ~0.5 s of CPU is not "foreign" load
        subprocess.run(
            [sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<0.5: pass"],
            check=True,
        )
    assert c.wall_s >= 0.5
    assert c.foreign_cores is not None and c.foreign_cores < 0.9  # the child itself used ~1 core
    assert c.niced_cores >= 0 and c.steal_cores >= 0


def test_wait_for_quiet_gives_up(monkeypatch):
    monkeypatch.setattr(machine, "busy_cores", lambda window_s=1.0: 5.0)
    t0 = time.monotonic()
    assert machine.wait_for_quiet(0.5, window_s=0.01, timeout_s=0.05) == 5.0
    assert time.monotonic() - t0 < 1.0
    monkeypatch.setattr(machine, "busy_cores", lambda window_s=1.0: 0.1)
    assert machine.wait_for_quiet(0.5, window_s=0.01, timeout_s=10) == 0.1
