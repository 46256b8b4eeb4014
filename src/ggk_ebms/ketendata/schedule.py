"""When the weekly Ketendata export is due: a pure decision on the current moment.

The Inlichtingenbureau makes its Ketendata set every Sunday at 06:00 (ready Monday); the day and
time are settings here. The slot is local time in the configured zone, so 06:00 stays 06:00
across daylight saving time.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ggk_ebms.errors import ConfigError

DAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DUTCH_DAYS: Final = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")


def parse_day(text: str) -> int:
    """Weekday number (Monday 0) from an English or Dutch day name."""
    name = text.strip().lower()
    for names in (DAYS, DUTCH_DAYS):
        if name in names:
            return names.index(name)
    raise ConfigError(f"ketendata_schedule_day {text!r} is no day name (e.g. sunday or zondag)")


def parse_time(text: str) -> time:
    try:
        hours, minutes = (int(part) for part in text.strip().split(":"))
        return time(hours, minutes)
    except ValueError:
        raise ConfigError(f"ketendata_schedule_time {text!r} is no HH:MM time") from None


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"ketendata_timezone {name!r} is no known time zone") from None


def latest_slot(now: datetime, *, weekday: int, at: time, tz: ZoneInfo) -> datetime:
    """The most recent scheduled moment at or before ``now`` (aware, in ``tz``)."""
    local = now.astimezone(tz)
    days_back = (local.weekday() - weekday) % 7
    day = local.date() - timedelta(days=days_back)
    slot = datetime.combine(day, at, tzinfo=tz)
    if slot > local:
        slot = datetime.combine(day - timedelta(days=7), at, tzinfo=tz)
    return slot


def due_slot(
    now: datetime, last_weekly: datetime | None, *, weekday: int, at: time, tz: ZoneInfo
) -> datetime | None:
    """The slot to export now, or None. ``last_weekly``: the slot of the last weekly export.

    A missed slot (the server was down on Sunday) is caught up at the next start; several missed
    slots give one export, since each export takes all data not delivered before.
    """
    slot = latest_slot(now, weekday=weekday, at=at, tz=tz)
    if last_weekly is not None and last_weekly >= slot:
        return None
    return slot
