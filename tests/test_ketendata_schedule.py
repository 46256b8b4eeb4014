"""The weekly schedule decision is a pure function of the moment (fake clock, no waiting)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from ggk_ebms.errors import ConfigError
from ggk_ebms.ketendata import schedule

AMS = schedule.zone("Europe/Amsterdam")
SUNDAY, SIX = schedule.parse_day("sunday"), time(6, 0)


def due(now: datetime, last: datetime | None) -> datetime | None:
    return schedule.due_slot(now, last, weekday=SUNDAY, at=SIX, tz=AMS)


def test_sunday_six_local_time_in_winter_and_summer() -> None:
    winter = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)  # 06:00 CET
    last = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
    assert due(winter - timedelta(seconds=1), last) is None
    assert due(winter, last) == winter
    assert due(winter + timedelta(days=3), last) == winter  # missed: caught up later
    assert due(winter, winter) is None  # made once
    summer = datetime(2026, 6, 7, 4, 0, tzinfo=UTC)  # 06:00 CEST
    assert due(summer, datetime(2026, 5, 31, 4, 0, tzinfo=UTC)) == summer
    assert due(summer - timedelta(minutes=1), datetime(2026, 5, 31, 4, 0, tzinfo=UTC)) is None


def test_several_missed_slots_give_one_export_up_to_the_latest() -> None:
    now = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)
    assert due(now, datetime(2026, 11, 29, 5, 0, tzinfo=UTC)) == datetime(2026, 12, 20, 5, 0, tzinfo=UTC)


def test_day_and_time_settings() -> None:
    assert schedule.parse_day("Zondag") == 6 and schedule.parse_day("monday") == 0
    assert schedule.parse_time("23:30") == time(23, 30)
    wednesday = schedule.latest_slot(
        datetime(2026, 12, 10, 12, 0, tzinfo=UTC),
        weekday=schedule.parse_day("woensdag"),
        at=time(23, 30),
        tz=AMS,
    )
    assert wednesday == datetime(2026, 12, 9, 22, 30, tzinfo=UTC)
    for bad in (lambda: schedule.parse_day("zondagmiddag"), lambda: schedule.parse_time("6 uur")):
        with pytest.raises(ConfigError):
            bad()
    with pytest.raises(ConfigError):
        schedule.zone("Europe/Nergenshuizen")
