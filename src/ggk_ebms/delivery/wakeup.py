"""Waking the delivery worker of this process when the receive path queues a 'deliver' job.

The receive path stores a business message and its 'deliver' job in one transaction; after the
commit it calls ``notify`` so the worker in the same process starts at once instead of at its
next poll (``worker_poll_seconds``). Workers in other processes or on other nodes still find the
job by polling: a missed wake-up only delays a delivery, it never loses one (docs/delivery.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_listeners: list[Callable[[], None]] = []
_lock = threading.Lock()


def add_listener(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` after every committed 'deliver' job in this process; returns the
    function that removes it again."""
    with _lock:
        _listeners.append(listener)

    def remove() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


def notify() -> None:
    """A 'deliver' job was committed: wake every listening worker (thread-safe, never raises)."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener()
        except RuntimeError:  # the listening event loop has closed meanwhile
            continue
