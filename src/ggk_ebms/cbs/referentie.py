"""The CBS referentienummer: the upload moment as ``yyyymmdd-hhmmss`` (Inlichtingenbureau note on
the Monitor Sociaal Domein), one per CSV, unique.

The moment is Dutch local time, as StUF's tijdstipBericht (stuf-ggk 2.1.04). Several CSVs of one
upload (a ZIP) and uploads within one second would share a moment; each next one then takes the
next free second, so the number stays unique and still reads as a moment of the upload.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

DUTCH: Final = ZoneInfo("Europe/Amsterdam")
PATTERN: Final = re.compile(r"[0-9]{8}-[0-9]{6}")
MAX_TRIES: Final = 3600


def referentienummer(moment: datetime) -> str:
    return moment.astimezone(DUTCH).strftime("%Y%m%d-%H%M%S")


def unique_referentienummer(moment: datetime, taken: Callable[[str], bool]) -> str:
    """The referentienummer of ``moment``, or of the first later second not ``taken``."""
    for offset in range(MAX_TRIES):
        candidate = referentienummer(moment + timedelta(seconds=offset))
        if not taken(candidate):
            return candidate
    raise RuntimeError("no free CBS referentienummer within an hour of the upload moment")
