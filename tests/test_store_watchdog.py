"""The round-trip watchdog (store/watchdog.py): a deadline armed while the thread already waits
for a later one still cuts its connection (the thread is woken for a new earliest deadline)."""

from __future__ import annotations

import socket
import time

from ggk_ebms.store.watchdog import Watchdog

DEADLINE_S = 30.0


def _wait_for_cuts(watchdog: Watchdog, count: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while watchdog.cuts < count:
        assert time.monotonic() < deadline, "the watchdog did not cut in time"
        time.sleep(0.01)


def test_a_new_earliest_deadline_wakes_the_watchdog_and_a_later_one_does_not_cut_early() -> None:
    watchdog = Watchdog()
    late_a, late_b = socket.socketpair()
    soon_a, soon_b = socket.socketpair()
    with late_a, late_b, soon_a, soon_b:
        late = watchdog.arm(late_a.fileno(), 3600.0)
        # Once the thread waits (for an hour) on its condition, arm a deadline that is due now.
        deadline = time.monotonic() + DEADLINE_S
        while not watchdog._cond._waiters:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the watchdog thread never waited"
            time.sleep(0.01)
        watchdog.arm(soon_a.fileno(), 0.0)
        _wait_for_cuts(watchdog, 1)
        assert soon_b.recv(1) == b""  # shut down: the peer sees the end of the stream
        late_a.setblocking(False)
        late_b.sendall(b"x")
        deadline = time.monotonic() + DEADLINE_S
        while True:  # the hour-long deadline's socket is untouched and still readable
            try:
                assert late_a.recv(1) == b"x"
                break
            except BlockingIOError:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        watchdog.disarm(late)
        assert watchdog.cuts == 1
