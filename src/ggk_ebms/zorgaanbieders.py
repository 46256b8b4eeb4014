"""The zorgaanbieder register's CSV format (docs/zorgaanbieders.md). Pure: bytes in, rows out.

Columns, by header name (case-insensitive, any order): ``agb`` (8 digits, iStandaarden
LDT_AgbCode), ``naam`` (1 to 255 characters) and optionally ``bereikbaar`` (``ja``/``nee``, or
empty for unknown). Separator ``;`` or ``,`` (the first line decides); UTF-8, a BOM allowed.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Final

MAX_BYTES: Final = 20 * 1024 * 1024
MAX_ROWS: Final = 200_000
NAME_MAX: Final = 255
AGB: Final = re.compile(r"[0-9]{8}")
_YES: Final = frozenset({"ja", "j", "yes", "true", "1"})
_NO: Final = frozenset({"nee", "n", "no", "false", "0"})


@dataclass(frozen=True)
class Aanbieder:
    agb: str
    naam: str
    bereikbaar: bool | None


@dataclass(frozen=True)
class Parsed:
    rows: tuple[Aanbieder, ...]
    errors: tuple[str, ...]  # Dutch, one per refused line: "regel 4: AGB-code '12' is geen 8 cijfers"


class RegisterError(ValueError):
    """The file as a whole cannot be read (Dutch text for the operator)."""


def parse_csv(data: bytes) -> Parsed:
    if len(data) > MAX_BYTES:
        raise RegisterError(f"bestand groter dan {MAX_BYTES // (1024 * 1024)} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RegisterError("bestand is geen UTF-8") from None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader, [])]
    if "agb" not in header or "naam" not in header:
        raise RegisterError("de eerste regel moet de kolommen agb en naam noemen (en eventueel bereikbaar)")
    at: dict[str, int] = {
        name: header.index(name) for name in ("agb", "naam", "bereikbaar") if name in header
    }
    rows: dict[str, Aanbieder] = {}
    errors: list[str] = []
    for line_no, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        if line_no - 1 > MAX_ROWS:
            raise RegisterError(f"meer dan {MAX_ROWS} regels")

        def cell(name: str, record: list[str] = record) -> str:
            index = at.get(name)
            return record[index].strip() if index is not None and index < len(record) else ""

        agb, naam, bereikbaar = cell("agb"), cell("naam"), cell("bereikbaar").lower()
        if not AGB.fullmatch(agb):
            errors.append(f"regel {line_no}: AGB-code is geen 8 cijfers")
            continue
        if not naam or len(naam) > NAME_MAX:
            errors.append(f"regel {line_no}: naam ontbreekt of is langer dan {NAME_MAX} tekens")
            continue
        if bereikbaar and bereikbaar not in _YES | _NO:
            errors.append(f"regel {line_no}: bereikbaar is ja, nee of leeg")
            continue
        rows[agb] = Aanbieder(agb, naam, None if not bereikbaar else bereikbaar in _YES)
    return Parsed(tuple(rows.values()), tuple(errors))
