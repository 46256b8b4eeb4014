"""File-name conventions of the CBS Monitor Sociaal Domein deliveries (docs/cbs.md "File names").

CBS processes the files by their names, so a wrong name is refused here, before anything is sent,
with a message naming the rule. The rules are one table (``RULES``) so the documentation, the
messages and the checks cannot drift apart.

A name is ``<set>_GM<gemeentecode>_<verslagperiode>.csv``, e.g. ``WmoBasis_GM0363_2026H1.csv``:

- the set: the three iWmo sets (basis, kosten, facultatief), Kosten Jeugdwet, Kosten SBO;
- the CBS gemeentecode with the ``GM`` prefix CBS uses for gemeenten;
- the verslagperiode, a half year (``2026H1``, ``2026H2``), as the monitor is delivered per half year.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class CbsSet(StrEnum):
    WMO_BASIS = "WmoBasis"
    WMO_KOSTEN = "WmoKosten"
    WMO_FACULTATIEF = "WmoFacultatief"
    JW_KOSTEN = "JwKosten"
    SBO_KOSTEN = "SboKosten"


# The opt-in (toestemming) is asked per group of sets (Inlichtingenbureau note on the monitor).
TOESTEMMING_GROUPS: Final = {
    "WMO basis + kosten + facultatief": (CbsSet.WMO_BASIS, CbsSet.WMO_KOSTEN, CbsSet.WMO_FACULTATIEF),
    "Kosten JW": (CbsSet.JW_KOSTEN,),
    "Kosten SBO": (CbsSet.SBO_KOSTEN,),
}

RULES: Final = {
    "CBS-N1": "de naam eindigt op .csv (kleine letters)",
    "CBS-N2": "alleen letters, cijfers, '_', '-' en '.', hoogstens 200 tekens",
    "CBS-N3": "drie delen gescheiden door '_': set, gemeente, verslagperiode",
    "CBS-N4": "de set is " + ", ".join(s.value for s in CbsSet),
    "CBS-N5": "de gemeente is 'GM' met een CBS-gemeentecode van vier cijfers uit de CBS-lijst",
    "CBS-N6": "de verslagperiode is een halfjaar JJJJH1 of JJJJH2, niet in de toekomst",
    "CBS-Z1": "een ZIP bevat alleen .csv-bestanden, zonder mappen, hoogstens 50, elk naar CBS-N1..N6",
}
MAX_NAME: Final = 200
MAX_ZIP_ENTRIES: Final = 50
MAX_CSV_BYTES: Final = 18 * 1024 * 1024  # base64 in a 25 MB StUF envelope (stuf-ggk 2.1.04 limit)
_CHARS: Final = re.compile(r"[A-Za-z0-9_.\-]+")
_PERIOD: Final = re.compile(r"([0-9]{4})H([12])")
_GEMEENTE: Final = re.compile(r"GM([0-9]{4})")


class CbsNameError(ValueError):
    """A name against a rule; ``rule`` is a key of RULES."""

    def __init__(self, name: str, rule: str, detail: str = "") -> None:
        self.name = name
        self.rule = rule
        text = f"bestandsnaam {name!r} voldoet niet aan regel {rule}: {RULES[rule]}"
        super().__init__(text + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class CbsFileName:
    name: str
    set: CbsSet
    gemeentecode: str
    jaar: int
    halfjaar: int

    @property
    def verslagperiode(self) -> str:
        return f"{self.jaar}H{self.halfjaar}"


def check_name(
    name: str, *, gemeentecodes: Collection[str], current_year: int, current_half: int
) -> CbsFileName:
    """The parts of a valid name, or CbsNameError naming the first rule it breaks."""
    if not name.endswith(".csv"):
        raise CbsNameError(name, "CBS-N1")
    if len(name) > MAX_NAME or not _CHARS.fullmatch(name):
        raise CbsNameError(name, "CBS-N2")
    parts = name.removesuffix(".csv").split("_")
    if len(parts) != 3:
        raise CbsNameError(name, "CBS-N3", f"{len(parts)} delen gevonden")
    set_text, gemeente_text, period_text = parts
    try:
        cbs_set = CbsSet(set_text)
    except ValueError:
        raise CbsNameError(name, "CBS-N4", f"{set_text!r} is geen set") from None
    gemeente = _GEMEENTE.fullmatch(gemeente_text)
    if gemeente is None or gemeente.group(1) not in gemeentecodes:
        raise CbsNameError(name, "CBS-N5", f"{gemeente_text!r}")
    period = _PERIOD.fullmatch(period_text)
    if period is None:
        raise CbsNameError(name, "CBS-N6", f"{period_text!r}")
    jaar, half = int(period.group(1)), int(period.group(2))
    if jaar < 2015 or (jaar, half) > (current_year, current_half):
        raise CbsNameError(
            name, "CBS-N6", f"{period_text!r} valt buiten 2015H1..{current_year}H{current_half}"
        )
    return CbsFileName(name, cbs_set, gemeente.group(1), jaar, half)


@dataclass(frozen=True)
class CsvUpload:
    """One CSV to deliver: its name and its bytes, sent unchanged."""

    name: str
    data: bytes

    def __repr__(self) -> str:  # the content is personal data (BSNs): never shown
        return f"CsvUpload({self.name!r}, bytes={len(self.data)})"


def csvs_from_zip(zip_name: str, data: bytes) -> list[CsvUpload]:
    """The CSVs of a ZIP (CBS-Z1): flat, .csv only, limited count and size; names not yet checked."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise CbsNameError(zip_name, "CBS-Z1", "geen geldig ZIP-bestand") from None
    with archive:
        entries = [i for i in archive.infolist() if not i.is_dir()]
        if not entries:
            raise CbsNameError(zip_name, "CBS-Z1", "de ZIP is leeg")
        if len(entries) > MAX_ZIP_ENTRIES:
            raise CbsNameError(zip_name, "CBS-Z1", f"{len(entries)} bestanden")
        uploads: list[CsvUpload] = []
        seen: set[str] = set()
        for info in entries:
            if "/" in info.filename or "\\" in info.filename:
                raise CbsNameError(zip_name, "CBS-Z1", f"{info.filename!r} staat in een map")
            if not info.filename.endswith(".csv"):
                raise CbsNameError(zip_name, "CBS-Z1", f"{info.filename!r} is geen .csv")
            if info.filename in seen:
                raise CbsNameError(zip_name, "CBS-Z1", f"{info.filename!r} komt twee keer voor")
            if info.file_size > MAX_CSV_BYTES:
                raise CbsNameError(
                    zip_name, "CBS-Z1", f"{info.filename!r} is groter dan {MAX_CSV_BYTES} bytes"
                )
            seen.add(info.filename)
            with archive.open(info) as member:
                # Read one byte past the limit: the header's size can lie (zip bomb).
                content = member.read(MAX_CSV_BYTES + 1)
            if len(content) > MAX_CSV_BYTES:
                raise CbsNameError(
                    zip_name, "CBS-Z1", f"{info.filename!r} is groter dan {MAX_CSV_BYTES} bytes"
                )
            uploads.append(CsvUpload(info.filename, content))
    return uploads
