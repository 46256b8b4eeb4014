"""Parsed CPAs for the hot path, kept in step with the database across processes.

Parsing a CPA costs milliseconds; a request must not pay that. Entries are keyed by CPAId and
remember the SHA-256 of the stored bytes. An entry older than ``recheck`` asks the database for
the current hash only (one indexed row), so a CPA imported, overwritten or deleted by the CLI or
another process is seen within ``recheck`` seconds (docs/rules.md: "stale caches after CPA change").
Writes made through this process call ``invalidate``.

A server process also calls ``refresh`` in the background every half ``recheck``
(server/run.py): the hashes of every cached CPA in one query, so a request finds its entry
fresh and is decided on the event loop, instead of going to a thread for the database each time
an entry turns stale (docs/performance.md, "The tail at half load"). The bound is the same: an
entry counts as checked from the moment before the query that confirmed it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ggk_ebms.cpa.model import Agreement
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.store.cpas import CpaRepository, on_cpa_change
from ggk_ebms.store.db import Database


@dataclass
class _Entry:
    sha256: str
    agreement: Agreement
    checked_at: float


class AgreementCache:
    def __init__(
        self,
        repository: CpaRepository,
        *,
        recheck: float = 2.0,
        max_cpa_bytes: int = 5 * 1024 * 1024,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._recheck = recheck
        self._max_bytes = max_cpa_bytes
        self._monotonic = monotonic
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        # An import or delete made by this process is seen at once, not after ``recheck``.
        self._stop_listening = on_cpa_change(self.invalidate)

    def get(self, cpa_id: str) -> Agreement | None:
        """The agreement with this CPAId, or None when no such CPA is stored."""
        now = self._monotonic()
        with self._lock:
            entry = self._entries.get(cpa_id)
        if entry is not None and now - entry.checked_at < self._recheck:
            return entry.agreement
        stored = self._repository.find(cpa_id)
        if stored is None:
            self.invalidate(cpa_id)
            return None
        if entry is not None and entry.sha256 == stored.sha256:
            entry.checked_at = now
            return entry.agreement
        # Stored CPAs passed validation at import, so a parse failure here is a real fault.
        agreement = parse_agreement(stored.raw, max_bytes=max(self._max_bytes, len(stored.raw)))
        with self._lock:
            self._entries[cpa_id] = _Entry(stored.sha256, agreement, now)
        return agreement

    @property
    def recheck(self) -> float:
        return self._recheck

    def refresh(self) -> None:
        """Confirm every cached entry against the stored hashes in one query (blocking: database
        I/O); an entry whose CPA changed or went is dropped, and the next ``get`` loads it."""
        started = self._monotonic()
        with self._lock:
            cached = dict(self._entries)
        if not cached:
            return
        stored = self._repository.digests(cached)
        for cpa_id, entry in cached.items():
            if stored.get(cpa_id) == entry.sha256:
                entry.checked_at = max(entry.checked_at, started)
            else:
                self.invalidate(cpa_id)

    def invalidate(self, cpa_id: str | None = None) -> None:
        with self._lock:
            if cpa_id is None:
                self._entries.clear()
            else:
                self._entries.pop(cpa_id, None)


_PROCESS_CACHES: dict[str, AgreementCache] = {}
_PROCESS_LOCK = threading.Lock()


def process_cache(database: Database, *, max_cpa_bytes: int) -> AgreementCache:
    """The one parsed-CPA cache of this process for ``database`` (keyed by its URL), so every
    service of a process, and every call of a CLI command, parses a CPA once."""
    with _PROCESS_LOCK:
        cache = _PROCESS_CACHES.get(database.url)
        if cache is None:
            cache = _PROCESS_CACHES[database.url] = AgreementCache(
                CpaRepository(database), max_cpa_bytes=max_cpa_bytes
            )
        return cache
