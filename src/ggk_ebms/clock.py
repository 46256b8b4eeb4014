"""Time and identifiers behind small protocols, so the core never reads the clock or a random source.

The pure core takes a ``Clock`` and an ``IdGenerator``; entrypoints pass the system ones and tests
pass fixed ones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock for tests: starts at ``at`` and only moves when told."""

    at: datetime

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at = self.at + delta


class IdGenerator(Protocol):
    def message_id(self) -> str:
        """A new globally unique ebMS MessageId (``UUID@host``, digest EB013)."""
        ...

    def uuid(self) -> str:
        """A new lowercase UUID v4 string (Content-IDs, ConversationIds, StUF referentienummers)."""
        ...


@dataclass
class UuidIdGenerator:
    """MessageIds as ``<uuid4>@<host>``; ``host`` is our CPA endpoint host (digest EB013, [ref])."""

    host: str = "localhost"

    def message_id(self) -> str:
        return f"{uuid.uuid4()}@{self.host}"

    def uuid(self) -> str:
        return str(uuid.uuid4())


@dataclass
class SequenceIdGenerator:
    """Predictable ids for tests: ``id-1@test``, ``id-2@test``…"""

    host: str = "test"
    _n: int = field(default=0)

    def message_id(self) -> str:
        self._n += 1
        return f"id-{self._n}@{self.host}"

    def uuid(self) -> str:
        self._n += 1
        return str(uuid.UUID(int=self._n, version=4))


def utc(dt: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken to be UTC already (digest §3.4 Decision)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def format_timestamp(dt: datetime) -> str:
    """xsd:dateTime in UTC with a ``Z`` and millisecond precision, as we send it (digest §3.4)."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc(dt).microsecond // 1000:03d}Z"
