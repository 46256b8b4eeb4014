"""Time and identifiers behind small protocols, so the core never reads the clock or a random source.

The pure core takes a ``Clock`` and an ``IdGenerator``; entrypoints pass the system ones and tests
pass fixed ones.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Protocol

# xsd:dateTime (XML Schema 1.0 Part 2, §3.2.7). The year is matched with any number of digits so
# that an over-long year gets the same clean refusal as any other malformed value.
_XSD_DATETIME: Final = re.compile(
    r"(?P<year>-?\d{4,})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"T(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?P<fraction>\.\d+)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?"
)
# No legitimate xsd:dateTime we exchange is longer (a 4-digit year, nanoseconds and an offset fit
# in 35); the cap keeps the regex and int() work on partner input bounded.
MAX_XSD_DATETIME_CHARS: Final = 64


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
        """A new globally unique ebMS MessageId (``UUID@host``, Digikoppeling BP EB013)."""
        ...

    def uuid(self) -> str:
        """A new lowercase UUID v4 string (Content-IDs, ConversationIds, StUF referentienummers)."""
        ...


@dataclass
class UuidIdGenerator:
    """MessageIds as ``<uuid4>@<host>``; ``host`` is our CPA
    endpoint host (Digikoppeling BP EB013, as ebms-core does)."""

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
    """An aware datetime in UTC; a naive one is taken to be UTC
    already (ebMS 2.0 §3.1, KVS ch. 5; our choice in docs/rules.md)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def format_timestamp(dt: datetime) -> str:
    """xsd:dateTime in UTC with a ``Z`` and millisecond
    precision, as we send it (ebMS 2.0 §3.1, KVS ch. 5)."""
    # isoformat in C, not strftime: this runs for every Acknowledgment sent (docs/performance.md,
    # round 11). It writes the year with four digits, as xsd:dateTime requires, where glibc's
    # %Y wrote years before 1000 short.
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.isoformat(timespec="milliseconds") + "Z"


def parse_xsd_datetime(text: str) -> tuple[datetime, bool]:
    """An xsd:dateTime as an aware UTC datetime, and whether it carried a time zone.

    Total: every input either yields a value or raises ValueError (never OverflowError). Python's
    datetime spans the years 1 to 9999 in UTC, so values that fall outside that range once their
    offset or a ``24:00:00`` is applied (``9999-12-31T24:00:00Z``, ``0001-01-01T00:00:00+14:00``),
    negative years and years of more than four digits are refused as "out of range". A 'Z' or an
    offset is honoured; a zone-less value is UTC (docs/ebms.md, timestamps).
    """
    if len(text) > MAX_XSD_DATETIME_CHARS:
        raise ValueError(f"not an xsd:dateTime: longer than {MAX_XSD_DATETIME_CHARS} characters")
    match = _XSD_DATETIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an xsd:dateTime: {text[:40]!r}")
    year_text = match["year"]
    if year_text.startswith("-") or len(year_text) > 4 or year_text == "0000":
        raise ValueError("xsd:dateTime year out of range (0001-9999)")
    parts = {k: int(v) for k, v in match.groupdict().items() if k not in ("fraction", "zone")}
    fraction = match["fraction"]
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    extra_day = False
    if parts["hour"] == 24:  # XSD 1.0: 24:00:00 is the first instant of the next day
        if parts["minute"] or parts["second"] or micro:
            raise ValueError("hour 24 is only allowed as 24:00:00")
        parts["hour"], extra_day = 0, True
    zone = match["zone"]
    tz = UTC
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 14 or minutes > 59 or (hours == 14 and minutes):
            raise ValueError("time zone offset out of range")
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        value = datetime(
            parts["year"],
            parts["month"],
            parts["day"],
            parts["hour"],
            parts["minute"],
            parts["second"],
            micro,
            tz,
        )
        if extra_day:
            value += timedelta(days=1)
        return value.astimezone(UTC), zone is not None
    except OverflowError:
        raise ValueError("xsd:dateTime out of range (0001-9999 in UTC)") from None
