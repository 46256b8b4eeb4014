"""Fewer malloc arenas for the server process, so freed request memory goes back to the system.

glibc gives each thread that allocates under contention its own arena (up to 8 x cores); memory
freed in one arena is not reused by another, so a thread pool handling large requests fragments
the heap: an outside probe saw RSS grow from 120 to 911 MiB over 45 heavy requests, and to 402 MiB
with MALLOC_ARENA_MAX=2. ``limit_arenas`` does what that variable does, from inside the process:
``mallopt(M_ARENA_MAX, n)`` before the worker threads start. ``trim`` hands free heap pages back.
Both are no-ops where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from typing import Final

log = logging.getLogger(__name__)

M_ARENA_MAX: Final = -8  # glibc malloc.h
DEFAULT_ARENAS: Final = 2


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - present in glibc only
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int | None = None) -> bool:
    """Set the arena cap (MALLOC_ARENA_MAX from the environment wins); whether it was set."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return True  # glibc read it at start already
    libc = _libc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(M_ARENA_MAX, arenas or DEFAULT_ARENAS))
    log.debug("malloc arenas limited to %d: %s", arenas or DEFAULT_ARENAS, ok)
    return ok


def trim() -> None:
    """Return free heap memory at the top of each arena to the operating system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
