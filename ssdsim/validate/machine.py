"""How busy the machine is, so that measured runs can wait for quiet and report contention.

On a shared machine other people's processes steal the cores a measurement needs (the executor
runs one process per core). ``busy_cores(window_s)`` reads /proc/stat twice: the cores in use
by normal-priority processes (niced ones yield to a measurement and are counted apart).
``wait_for_quiet`` waits (up to a timeout) until at most ``max_busy`` such cores are in use;
``Contention`` measures, around a child process's run, the CPU other normal-priority processes
used: busy core-seconds minus the children's own (``resource.getrusage(RUSAGE_CHILDREN)``), per
second of wall time; and, apart, niced processes' and the hypervisor's steal. Linux only; elsewhere every reading is None
and nothing waits. Pure standard library.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_ticks() -> tuple[int, int, int, int] | None:
    """(busy, total, steal, niced) jiffies summed over all cores, or None without /proc/stat.

    busy excludes time spent in processes with a positive nice value (``niced``): those yield
    the core to a normal-priority measurement.
    """
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    fields += [0] * (8 - len(fields))
    niced, idle, iowait, steal = fields[1], fields[3], fields[4], fields[7]
    total = sum(fields[:8])
    return total - idle - iowait - steal - niced, total, steal, niced


def busy_cores(window_s: float = 1.0) -> float | None:
    """Cores used by normal-priority processes (niced ones excluded) over ``window_s`` seconds."""
    a = _cpu_ticks()
    time.sleep(window_s)
    b = _cpu_ticks()
    if a is None or b is None or b[1] == a[1]:
        return None
    return (b[0] - a[0]) / (b[1] - a[1]) * (os.cpu_count() or 1)


def wait_for_quiet(
    max_busy: float, window_s: float = 2.0, timeout_s: float = 300.0
) -> float | None:
    """Wait until at most ``max_busy`` cores are in use; returns the last reading (None: unknown)."""
    deadline = time.monotonic() + timeout_s
    while True:
        busy = busy_cores(window_s)
        if busy is None or busy <= max_busy or time.monotonic() >= deadline:
            return busy


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@dataclass
class Contention:
    """CPU used by other processes (cores, averaged) while a child process ran; use as a context."""

    foreign_cores: float | None = None
    niced_cores: float | None = None
    steal_cores: float | None = None
    wall_s: float = 0.0

    def __enter__(self) -> Contention:
        self._ticks = _cpu_ticks()
        self._children = _children_cpu_s()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._t0
        ticks = _cpu_ticks()
        if self._ticks is None or ticks is None or self.wall_s <= 0:
            return
        busy_s = (ticks[0] - self._ticks[0]) / CLOCK_TICKS
        mine_s = _children_cpu_s() - self._children
        self.foreign_cores = max(0.0, (busy_s - mine_s) / self.wall_s)
        self.steal_cores = (ticks[2] - self._ticks[2]) / CLOCK_TICKS / self.wall_s
        self.niced_cores = (ticks[3] - self._ticks[3]) / CLOCK_TICKS / self.wall_s
