"""Work on the event loop's own thread, and the guard that keeps blocking I/O out of it.

The inbound request path decides a small message on the event loop's thread and hands only the
commit to the store's writer thread (server/app.py, pipeline/inbound.py; docs/performance.md
"The request path on the event loop"): a thread hand-off per request cost about 30% of the
server's CPU. That is sound only while the decision does no blocking I/O, which would stall
every other connection of the process. Rather than trusting each caller to know what it may
reach, the places that block (a database session, a CRL or OCSP download) call ``blocking_io``
first: inside ``forbid_blocking`` that raises ``NeedsThread`` before anything is done, and the
caller starts the same work again in a worker thread. Outside it, ``blocking_io`` costs one
thread-local lookup.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_state = threading.local()


class NeedsThread(BaseException):
    """The work reached blocking I/O on the event loop; nothing was done yet: redo it in a thread.

    A BaseException on purpose: the decision and the revocation checker turn ``Exception`` into
    refusals or "status unknown", and this must never be mistaken for either.
    """

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@contextmanager
def forbid_blocking() -> Iterator[None]:
    """Within this block (on this thread only) ``blocking_io`` raises ``NeedsThread``."""
    previous = getattr(_state, "forbidden", False)
    _state.forbidden = True
    try:
        yield
    finally:
        _state.forbidden = previous


def blocking_io(what: str) -> None:
    """Called just before blocking I/O (``what`` names it): raises ``NeedsThread`` inside
    ``forbid_blocking``, does nothing elsewhere."""
    if getattr(_state, "forbidden", False):
        raise NeedsThread(what)
