"""The event loop ``serve`` runs on: uvloop when it is installed, asyncio's own loop otherwise.

uvloop (libuv) does the loop's own work (selector, transports, callbacks from the inbound
thread pool) in C: less Python per message on the hot path (docs/performance.md, "Round 3").
It is a dependency on Linux; the fallback keeps ``serve`` working where it cannot be installed.
Setting ``GGK_EBMS_EVENT_LOOP=asyncio`` chooses asyncio's loop (for comparison and diagnosis).

``run`` also shortens the interpreter's thread switch interval (``sys.setswitchinterval``) from
5 ms to ``SWITCH_INTERVAL_MS``. The event loop's thread decides requests while the store's writer
thread waits for PostgreSQL; when an answer arrives, the writer needs the GIL back, and a busy
loop thread would make it wait a whole interval per round trip, holding back every commit of the
group, i.e. every acknowledgement (the convoy effect described in psycopg issue 448). The loop
still runs undisturbed when no other thread wants the GIL. ``GGK_EBMS_SWITCH_INTERVAL_MS`` sets
another value (for comparison and diagnosis).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV_LOOP = "GGK_EBMS_EVENT_LOOP"
ENV_SWITCH_INTERVAL = "GGK_EBMS_SWITCH_INTERVAL_MS"
SWITCH_INTERVAL_MS = 0.5


def switch_interval() -> float:
    """The thread switch interval ``run`` sets, in seconds."""
    value = os.environ.get(ENV_SWITCH_INTERVAL, "").strip()
    try:
        milliseconds = float(value) if value else SWITCH_INTERVAL_MS
    except ValueError:
        milliseconds = SWITCH_INTERVAL_MS
    return max(milliseconds, 0.05) / 1000


def loop_name() -> str:
    """'uvloop' or 'asyncio': the loop ``run`` will use."""
    if os.environ.get(ENV_LOOP, "").strip().lower() == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop ``loop_name`` names, with the switch interval set."""
    sys.setswitchinterval(switch_interval())
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def stop_event() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets, on the running loop: how a ``serve`` process, its
    scheduled-work process and ``ggk-ebms worker`` learn to shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
