"""In-process wake-ups: a worker that polls is told at once when work it waits for was committed.

A missed wake-up only delays work until the worker's next poll, it never loses any: the job is in
the database (docs/delivery.md, docs/sending.md). Used for 'deliver' jobs queued by the receive
path (delivery/wakeup.py) and 'send' jobs queued by a submit (pipeline/outbound.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Wakeup:
    """Listeners to call after a commit; thread-safe, and ``notify`` never raises."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` on every ``notify``; returns the function that removes it again."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def notify(self) -> None:
        """Work was committed: call every listener (e.g. ``loop.call_soon_threadsafe``)."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except RuntimeError:  # the listening event loop has closed meanwhile
                continue
