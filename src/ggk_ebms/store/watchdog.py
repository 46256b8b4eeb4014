"""A client-side deadline for PostgreSQL round trips: a silent connection is cut, not waited on.

When the database host vanishes without a reset (packets dropped, a hung proxy), libpq waits for
an answer that never comes: an outside probe saw requests hang for the whole cut and the first
503 after 30-39 s. Server-side timeouts cannot help (the server never sees the statement), and
TCP keepalives only act on idle connections. So every round trip is armed here with a deadline;
when it passes, the connection's socket is shut down from this watchdog thread, the waiting
driver call fails at once with a connection error, SQLAlchemy discards the connection, and the
store answers ``StoreUnavailableError`` (HTTP 503, the sender retries).

One thread for all connections; arming and disarming are O(log n) heap operations.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._heap: list[tuple[float, int, int]] = []  # (deadline, token, fd)
        self._live: dict[int, int] = {}  # token -> fd, for armed deadlines
        self._tokens = itertools.count(1)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.cuts = 0  # connections cut so far (for tests and diagnostics)

    def arm(self, fd: int, seconds: float) -> int:
        """Cut ``fd`` unless ``disarm`` is called within ``seconds``; returns the token."""
        token = next(self._tokens)
        with self._cond:
            self._live[token] = fd
            heapq.heappush(self._heap, (self._monotonic() + seconds, token, fd))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0][1] == token:
                # Wake the thread only for a new earliest deadline: it already waits until the
                # earliest one, which is sooner than this. Waking it per round trip cost a
                # thread switch (and the GIL) per statement (docs/performance.md, "Round 3").
                self._cond.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._live.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                # Forget disarmed deadlines at the front; wait for the first live one.
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token, fd = self._heap[0]
                delay = deadline - self._monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._live.pop(token, None)
            self._cut(fd)

    def _cut(self, fd: int) -> None:
        self.cuts += 1
        log.warning("database connection silent past its deadline: cut, the request gets 503")
        try:
            # A duplicate of the descriptor: shutting it down wakes the driver's blocked wait on
            # the same socket; closing the duplicate leaves the driver's own descriptor alone.
            with socket.socket(fileno=_dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by its owner


def _dup(fd: int) -> int:
    import os

    return os.dup(fd)
