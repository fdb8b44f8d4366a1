"""The shared-memory mailbox: ordered request/response slots, the doorbell, dead or slow peers.

Both ends are opened on one file in this process (the worker's end as a second mapping), so
the protocol is checked without a second process; the two-process tests exercise it for real.
"""

from __future__ import annotations

import time

import pytest
import torch

from executor.ssd.mailbox import Mailbox
from executor.ssd.transport import LinkError, new_shared_path


@pytest.fixture
def ends():
    path = new_shared_path()
    target = Mailbox(path, 4, 3, spin_s=0.0, nap_s=1e-4, check_s=0.01)
    worker = Mailbox(path, 4, 3, spin_s=0.0, nap_s=1e-4, check_s=0.01)
    yield target, worker
    path.unlink()


def alive() -> bool:
    return True


def test_requests_and_answers_travel_in_order(ends):
    target, worker = ends
    got, ans = torch.zeros(4, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    for i in range(3):
        assert not worker.pending()
        target.post(torch.full((4,), float(i)), timeout_s=1.0, alive=alive)
        assert worker.pending()  # the doorbell rings until the worker takes the request
        assert worker.take(got, alive=alive).tolist() == [float(i)] * 4
        assert not worker.pending()
        worker.answer(torch.tensor([i, i + 1.0, i + 2.0], dtype=torch.float64))
        assert target.wait_answer(ans, timeout_s=1.0, alive=alive).tolist() == [i, i + 1, i + 2]


def test_a_request_waits_until_the_previous_one_was_taken(ends):
    target, worker = ends
    target.post(torch.ones(4, dtype=torch.float64), timeout_s=1.0, alive=alive)
    with pytest.raises(LinkError, match=r"take a request within 0\.05 s"):
        target.post(torch.zeros(4, dtype=torch.float64), timeout_s=0.05, alive=alive)
    got = torch.zeros(4, dtype=torch.float64)
    assert worker.take(got, alive=alive).tolist() == [1.0] * 4  # not overwritten


def test_a_dead_or_silent_peer_raises(ends):
    target, _ = ends
    out = torch.zeros(3, dtype=torch.float64)
    start = time.perf_counter()
    with pytest.raises(LinkError, match="peer is gone"):
        target.wait_answer(out, timeout_s=10.0, alive=lambda: False)
    assert time.perf_counter() - start < 1.0  # noticed at the next liveness check
    with pytest.raises(LinkError, match=r"did not answer within 0\.05 s"):
        target.wait_answer(out, timeout_s=0.05, alive=alive)


def test_mailbox_refuses_cpus_without_ordered_stores():
    from executor.ssd.mailbox import check_machine

    check_machine("x86_64")
    with pytest.raises(LinkError, match="aarch64"):
        check_machine("aarch64")


def _looks_during(box: Mailbox, seconds: float, **kw) -> int:
    """How many times a wait of ``seconds`` looks at its condition."""
    looks, end = [0], time.perf_counter() + seconds

    def ready() -> bool:
        looks[0] += 1
        return time.perf_counter() >= end

    box._wait(ready, 10.0, alive, "test", **kw)
    return looks[0]


def test_a_long_wait_naps_longer_and_longer():
    """An idle worker (its engine waits while another runs) must not wake thousands of times a
    second on the core the running draft needs: naps double from nap_s up to max_nap_s."""
    path = new_shared_path()
    try:
        box = Mailbox(path, 4, 3, spin_s=0.0, nap_s=1e-4, max_nap_s=0.01, check_s=0.01)
        assert _looks_during(box, 0.3) < 60  # ~0.3 / 0.01 + the doubling; 1e-4 naps: thousands
        spinner = Mailbox(path, 4, 3, spin_s=0.1, nap_s=1e-4, max_nap_s=0.01, check_s=0.01)
        # spins first (a request is due soon); best of three: on a loaded shared machine one
        # 0.15 s window may hold only a few ms of CPU for this process
        assert max(_looks_during(spinner, 0.15) for _ in range(3)) > 1000
        assert _looks_during(spinner, 0.15, spin=False) < 60  # between batches: naps at once
    finally:
        path.unlink()
