"""Where SSD's two workers run: two GPUs (NCCL), or two CPU cores (gloo), chosen automatically.

``plan_devices("auto")``: with two or more CUDA devices the target gets cuda:0 and the draft
cuda:1, linked by NCCL; otherwise both run on CPU, each process with its own core (pinned with
``os.sched_setaffinity``; the first two cores this process may use), linked by gloo over
loopback plus shared memory for the draft distributions. Explicit plans: ``cpu`` (two cores,
automatic), ``cpu:A,cpu:B`` (these cores), ``cuda:I,cuda:J`` (two distinct GPUs), or mixed
(``cuda:0,cpu:1``: gloo, q staged through host shared memory). Imports torch only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


class DeviceError(ValueError):
    """A device plan that this machine cannot run."""


@dataclass(frozen=True)
class DevicePlan:
    """Devices of the target and the draft process, and the CPU core each is pinned to."""

    target: torch.device
    draft: torch.device
    target_core: int | None = None
    draft_core: int | None = None

    @property
    def backend(self) -> str:
        """NCCL between two distinct GPUs, gloo otherwise."""
        both_cuda = self.target.type == "cuda" and self.draft.type == "cuda"
        return "nccl" if both_cuda else "gloo"

    @property
    def q_in_shared_memory(self) -> bool:
        return self.backend == "gloo"

    def describe(self) -> dict[str, str]:
        def one(dev: torch.device, core: int | None) -> str:
            return f"{dev} (core {core})" if core is not None else str(dev)

        return {
            "target": one(self.target, self.target_core),
            "draft": one(self.draft, self.draft_core),
            "backend": self.backend,
        }


def _cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def _auto_cpu() -> DevicePlan:
    cores = _cores()
    cpu = torch.device("cpu")
    if len(cores) < 2:
        log.warning("only one CPU core available: target and draft share it (no overlap)")
        return DevicePlan(cpu, cpu)
    return DevicePlan(cpu, cpu, cores[0], cores[1])


def _one(part: str) -> tuple[torch.device, int | None]:
    name, _, index = part.strip().partition(":")
    if name == "cpu":
        if not index:
            return torch.device("cpu"), None
        if not index.isdigit() or int(index) not in _cores():
            raise DeviceError(
                f"--devices: core {index!r} is not one of this process's cores {_cores()}"
            )
        return torch.device("cpu"), int(index)
    if name == "cuda":
        n = torch.cuda.device_count()
        i = int(index) if index.isdigit() else 0
        if i >= n:
            raise DeviceError(f"--devices: {part!r} but this machine has {n} CUDA device(s)")
        return torch.device("cuda", i), None
    raise DeviceError(f"--devices: {part!r} is not cpu, cpu:CORE or cuda:N")


def plan_devices(spec: str = "auto") -> DevicePlan:
    """The plan for ``auto``, ``cpu``, ``cuda`` or ``TARGET,DRAFT`` (see the module docstring)."""
    spec = spec.strip()
    if spec == "auto":
        if torch.cuda.device_count() >= 2:
            return DevicePlan(torch.device("cuda", 0), torch.device("cuda", 1))
        return _auto_cpu()
    if spec == "cpu":
        return _auto_cpu()
    if spec == "cuda":
        return plan_devices("cuda:0,cuda:1")
    parts = spec.split(",")
    if len(parts) != 2:
        raise DeviceError(f"--devices {spec!r}: expected auto, cpu, cuda or TARGET,DRAFT")
    (t, tc), (d, dc) = _one(parts[0]), _one(parts[1])
    if t.type == d.type == "cuda" and t == d:
        raise DeviceError(f"--devices {spec!r}: NCCL needs two distinct GPUs")
    if tc is not None and tc == dc:
        log.warning("--devices %s: target and draft pinned to the same core (no overlap)", spec)
    return DevicePlan(t, d, tc, dc)
