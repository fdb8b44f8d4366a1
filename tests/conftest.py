"""Project-wide test setup.

Tests that use torch run with one torch thread: the machine (and CI) has two shared cores, and
torch's default of one thread per core made single tests run 50x slower under contention.
The simulator's tests never import torch; this only applies when torch is installed.
"""

from __future__ import annotations

try:  # torch is an optional extra: ssdsim's tests run without it
    import torch
except ImportError:  # pragma: no cover - core-only installs
    torch = None

if torch is not None:
    torch.set_num_threads(1)
