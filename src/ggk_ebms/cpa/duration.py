"""xsd:duration, parsed in full: ``PnYnMnDTnHnMnS`` with a fractional seconds part.

A CPA states RetryInterval, PersistDuration and timeToPerform as xsd:duration (XML Schema 1.0
Part 2 §3.2.6). The reference adapter once mis-read such values (release notes 2.19.3; docs/rules.md
"duration bug in CPA"), so this parser follows the lexical rules to the letter instead of
guessing:

- ``P`` is required, then at least one component, each at most once and in the order Y M D T H M S;
- a ``T`` must be followed by at least one of H, M, S, and H/M/S may only stand after a ``T``;
- only the seconds may carry a fraction (``PT0.5S``); other components are whole numbers;
- a leading ``-`` is valid XSD but means a negative interval, which no CPA setting can use, so it
  is refused rather than silently made positive.

Years and months have no fixed length. ``to_timedelta`` uses calendar-free approximations,
1 year = 365 days and 1 month = 30 days, which is what a retry schedule or a persistence window
needs; ``add_to`` applies years and months on the calendar when an anchor date is known.
Fractions finer than a microsecond are truncated (``timedelta`` cannot hold them).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final

DAYS_PER_YEAR: Final = 365
DAYS_PER_MONTH: Final = 30

_DURATION = re.compile(
    r"""
    (?P<sign>-)?P
    (?:(?P<years>\d+)Y)?
    (?:(?P<months>\d+)M)?
    (?:(?P<days>\d+)D)?
    (?:T
        (?:(?P<hours>\d+)H)?
        (?:(?P<minutes>\d+)M)?
        (?:(?P<seconds>\d+(?:\.\d+)?)S)?
    )?
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class XsdDuration:
    """The components of an xsd:duration as written; ``seconds`` keeps its exact fraction."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: Decimal = Decimal(0)

    def to_timedelta(self) -> timedelta:
        """The length with 1 year = 365 days and 1 month = 30 days (module docstring)."""
        days = self.years * DAYS_PER_YEAR + self.months * DAYS_PER_MONTH + self.days
        return _timedelta(days, self.hours, self.minutes, self.seconds)

    def add_to(self, moment: datetime) -> datetime:
        """``moment`` plus this duration, months and years on the calendar (XSD 1.0 Appendix E).

        A day of month past the end of the target month is clipped to its last day, as the XSD
        algorithm does (31 January + P1M = 28 or 29 February).
        """
        total_months = moment.month - 1 + self.years * 12 + self.months
        year = moment.year + total_months // 12
        month = total_months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        try:
            shifted = moment.replace(year=year, month=month, day=day)
        except ValueError as exc:
            raise ValueError(f"duration moves {moment.isoformat()} out of range") from exc
        return shifted + _timedelta(self.days, self.hours, self.minutes, self.seconds)


def _timedelta(days: int, hours: int, minutes: int, seconds: Decimal) -> timedelta:
    whole = int(seconds)
    micro = int((seconds - whole) * 1_000_000)  # truncates below a microsecond
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=whole, microseconds=micro)
    except OverflowError as exc:
        raise ValueError("duration is too large") from exc


def parse_xsd_duration(text: str) -> XsdDuration:
    """Parse an xsd:duration; ``ValueError`` names what is wrong.

    Surrounding whitespace is allowed (xsd:duration has whiteSpace "collapse"), inner whitespace
    is not.
    """
    value = text.strip()
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not an xsd:duration (PnYnMnDTnHnMnS)")
    parts = match.groupdict()
    if parts["sign"]:
        raise ValueError(f"{value!r} is negative; a CPA interval must not be")
    if all(parts[name] is None for name in ("years", "months", "days", "hours", "minutes", "seconds")):
        raise ValueError(f"{value!r} has no components")
    if "T" in value and all(parts[name] is None for name in ("hours", "minutes", "seconds")):
        raise ValueError(f"{value!r} has a 'T' without hours, minutes or seconds")
    try:
        seconds = Decimal(parts["seconds"]) if parts["seconds"] else Decimal(0)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only digits
        raise ValueError(f"{value!r} has unreadable seconds") from exc
    return XsdDuration(
        years=int(parts["years"] or 0),
        months=int(parts["months"] or 0),
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=seconds,
    )


def parse_duration(text: str) -> timedelta:
    """An xsd:duration as a ``timedelta`` (years/months approximated; module docstring)."""
    return parse_xsd_duration(text).to_timedelta()


def format_duration(delta: timedelta) -> str:
    """A non-negative ``timedelta`` as the shortest xsd:duration with days and a time part.

    Used when we write CPAs: ``timedelta(hours=3)`` -> ``PT3H``, ``timedelta(days=1)`` -> ``P1D``.
    """
    if delta < timedelta(0):
        raise ValueError("a CPA duration cannot be negative")
    days = delta.days
    hours, rest = divmod(delta.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if seconds or delta.microseconds:
        frac = f".{delta.microseconds:06d}".rstrip("0") if delta.microseconds else ""
        time += f"{seconds}{frac}S"
    if time:
        out += "T" + time
    return out if out != "P" else "PT0S"
