"""The event loop ``serve`` runs on: uvloop when it is installed, asyncio's own loop otherwise.

uvloop (libuv) does the loop's own work (selector, transports, callbacks from the inbound
thread pool) in C: less Python per message on the hot path (docs/performance.md, "Round 3").
It is a dependency on Linux; the fallback keeps ``serve`` working where it cannot be installed.
Setting ``GGK_EBMS_EVENT_LOOP=asyncio`` chooses asyncio's loop (for comparison and diagnosis).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV_LOOP = "GGK_EBMS_EVENT_LOOP"


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
    """``asyncio.run(main)`` on the loop ``loop_name`` names."""
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
