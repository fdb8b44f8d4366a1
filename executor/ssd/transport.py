"""The pipe between the two SSD processes: a two-rank process group and a shared q buffer.

Rank 0 is the target, rank 1 the draft. A ``TCPStore`` on the target's side (an OS-chosen
port) serves the rendezvous and the worker's startup status (``worker_up`` or
``worker_error``); then each side builds a standalone gloo (CPU) or NCCL (GPU) process group,
no global ``torch.distributed`` state, so several engines can live in one process one after the
other. ``Pipe.send``/``recv`` move one fixed-size tensor and raise ``LinkError`` when the peer is
gone or the receive times out. On CPU the draft distributions travel through a file in
/dev/shm mapped by both processes (``shared_tensor``): gloo showed multi-millisecond spikes for
messages of 256 KB or more on this machine, a shared mapping costs one memcpy. The small control
messages go through another shared file (executor.ssd.mailbox); the process group carries the
prompts of a new batch and, between two GPUs, the draft distributions.
Imports torch only.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

TAG = 0


class LinkError(RuntimeError):
    """The peer is gone, or a receive timed out."""


def make_store(port: int, *, is_server: bool, timeout_s: float) -> dist.TCPStore:
    return dist.TCPStore(
        "127.0.0.1",
        port,
        2,
        is_server,
        timedelta(seconds=timeout_s),
        wait_for_workers=False,
    )


class Pipe:
    """One side of the two-rank process group: blocking send/recv of whole tensors."""

    def __init__(self, store: dist.TCPStore, rank: int, backend: str, *, timeout_s: float) -> None:
        timeout = timedelta(seconds=timeout_s)
        if backend == "nccl":
            self.pg = dist.ProcessGroupNCCL(store, rank, 2, timeout=timeout)
        else:
            self.pg = dist.ProcessGroupGloo(store, rank, 2, timeout)
        self.peer = 1 - rank

    def send(self, t: torch.Tensor, timeout_s: float | None = None) -> None:
        try:
            work = self.pg.send([t], self.peer, TAG)
            self._wait(work, timeout_s)
        except RuntimeError as exc:
            raise LinkError(f"send to rank {self.peer} failed: {_first_line(exc)}") from exc

    def recv(self, t: torch.Tensor, timeout_s: float | None = None) -> None:
        try:
            work = self.pg.recv([t], self.peer, TAG)
            self._wait(work, timeout_s)
        except RuntimeError as exc:
            raise LinkError(f"receive from rank {self.peer} failed: {_first_line(exc)}") from exc

    @staticmethod
    def _wait(work, timeout_s: float | None) -> None:
        if timeout_s is None:
            work.wait()
        else:
            work.wait(timedelta(seconds=timeout_s))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def new_shared_path() -> Path:
    """A fresh file name in /dev/shm (or the temp dir) for the q buffer."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    fd, name = tempfile.mkstemp(prefix="ssdsim-q-", dir=base)
    os.close(fd)
    return Path(name)


def shared_tensor(
    path: str | Path, shape: tuple[int, ...], dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A tensor of ``shape`` backed by the shared file at ``path`` (both sides map it)."""
    numel = 1
    for n in shape:
        numel *= n
    return torch.from_file(str(path), shared=True, size=numel, dtype=dtype).view(shape)
