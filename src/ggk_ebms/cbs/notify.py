"""When to remind about CBS deliveries and opt-ins: pure decisions on a date.

Inlichtingenbureau note on the monitor: the delivery period of a verslagperiode starts on the
first day of the month after it (configurable offset in months), and the opt-in is asked a
configurable number of days after that start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Periode:
    jaar: int
    halfjaar: int

    @property
    def text(self) -> str:
        return f"{self.jaar}H{self.halfjaar}"

    @property
    def last_day(self) -> date:
        return date(self.jaar, 6, 30) if self.halfjaar == 1 else date(self.jaar, 12, 31)

    def previous(self) -> Periode:
        return Periode(self.jaar, 1) if self.halfjaar == 2 else Periode(self.jaar - 1, 2)


def periode_of(day: date) -> Periode:
    return Periode(day.year, 1 if day.month <= 6 else 2)


def delivery_start(periode: Periode, *, offset_months: int = 1) -> date:
    """The first day of the month ``offset_months`` after the verslagperiode's last month."""
    month = periode.last_day.month + offset_months
    year = periode.last_day.year + (month - 1) // 12
    return date(year, (month - 1) % 12 + 1, 1)


@dataclass(frozen=True)
class Reminder:
    kind: str  # "aanleveren" or "toestemming"
    periode: Periode
    due_from: date


def due_reminders(
    today: date,
    *,
    delivered: frozenset[str],
    consented: frozenset[str],
    offset_months: int = 1,
    toestemming_after_days: int = 28,
) -> list[Reminder]:
    """Reminders for the latest verslagperiode whose delivery period has started: files when none
    were delivered for it, the opt-in when none was sent once it is asked."""
    periode = periode_of(today).previous()
    start = delivery_start(periode, offset_months=offset_months)
    while start > today:
        periode = periode.previous()
        start = delivery_start(periode, offset_months=offset_months)
    reminders: list[Reminder] = []
    if periode.text not in delivered:
        reminders.append(Reminder("aanleveren", periode, start))
    ask = start + timedelta(days=toestemming_after_days)
    if today >= ask and periode.text not in consented:
        reminders.append(Reminder("toestemming", periode, ask))
    return reminders
