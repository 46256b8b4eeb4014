"""The round-trip watchdog (store/watchdog.py): a deadline that passes cuts its connection, a
disarmed one never does, and waking the thread only for a new earliest deadline loses none."""

from __future__ import annotations

import socket
import time

from ggk_ebms.store.watchdog import Watchdog


def _wait_for(check: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the watchdog did not act in time"
        time.sleep(0.01)


def test_an_earlier_deadline_armed_after_a_later_one_still_cuts() -> None:
    dog = Watchdog()
    far, far_peer = socket.socketpair()
    near, near_peer = socket.socketpair()
    with far, far_peer, near, near_peer:
        dog.arm(far.fileno(), 3600.0)  # the thread now waits an hour for this one...
        dog.arm(near.fileno(), 0.05)  # ...and must be woken for this earlier one
        _wait_for(lambda: dog.cuts == 1)
        near_peer.settimeout(20)
        assert near_peer.recv(1) == b""  # shut down: the peer sees end of stream
        far_peer.setblocking(False)
        try:
            far_peer.recv(1)
            raise AssertionError("the far connection was cut too")
        except BlockingIOError:
            pass  # still open, nothing to read


def test_disarmed_deadlines_never_cut_and_do_not_pile_up() -> None:
    dog = Watchdog()
    a, b = socket.socketpair()
    with a, b:
        kept = dog.arm(a.fileno(), 3600.0)
        for _ in range(5000):
            dog.disarm(dog.arm(a.fileno(), 3600.0))
        # Rebuilt from the live deadlines whenever stale ones pass the threshold.
        assert len(dog._heap) <= 2 * len(dog._live) + 1024 + 1
        assert kept in dog._live
        dog.disarm(kept)
        assert dog.cuts == 0
        last = dog.arm(b.fileno(), 0.05)
        _wait_for(lambda: dog.cuts == 1)
        assert last not in dog._live
