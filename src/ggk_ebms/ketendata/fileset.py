"""Rows into CSV files, the summary file, and a ZIP of files.

CSV: UTF-8 without BOM, ';' as separator (the Dutch spreadsheet default, also the CBS convention),
a header row, CRLF line ends (RFC 4180). A file's columns are its fixed key columns, then every
column any of its rows carries, in the order first met (messages ordered by the moment they
passed the GGk); a row without a value leaves the cell empty.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from ggk_ebms.ketendata.columns import META_COLUMNS, PART_KEY_COLUMNS
from ggk_ebms.ketendata.flatten import Row

SUMMARY_FILE: Final = "Samenvatting.csv"
SUMMARY_COLUMNS: Final = ("Bestand", "Berichttype", "Regels", "DubbelVerwijderd", "PeriodeVan", "PeriodeTot")


@dataclass(frozen=True)
class CsvFile:
    name: str
    data: bytes
    rows: int

    def __repr__(self) -> str:
        return f"CsvFile({self.name!r}, rows={self.rows}, bytes={len(self.data)})"


def csv_bytes(columns: list[str], rows: Iterable[Mapping[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return out.getvalue().encode("utf-8")


def _berichttype_of(file: str) -> str:
    return file.removesuffix(".csv").split("_", 1)[0]


def build_files(
    rows: list[Row],
    *,
    removed: Mapping[str, int],
    since: datetime | None,
    until: datetime,
    extra: Sequence[CsvFile] = (),
) -> list[CsvFile]:
    """One CSV per file name in ``rows`` (sorted by name), the ``extra`` files made elsewhere
    (the koppeltabel), then the summary file."""
    by_file: dict[str, list[Row]] = {}
    for row in rows:
        by_file.setdefault(row.file, []).append(row)
    files: list[CsvFile] = []
    summary: list[dict[str, str]] = []
    berichttypes_with_file: set[str] = set()
    period = {
        "PeriodeVan": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if since else "",
        "PeriodeTot": until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    for name in sorted(by_file):
        file_rows = by_file[name]
        is_part = "_" in name.removesuffix(".csv")
        columns = list(PART_KEY_COLUMNS if is_part else META_COLUMNS)
        for row in file_rows:
            for column in row.values:
                if column not in columns:
                    columns.append(column)
        files.append(CsvFile(name, csv_bytes(columns, (r.values for r in file_rows)), len(file_rows)))
        berichttype = _berichttype_of(name)
        berichttypes_with_file.add(berichttype)
        summary.append(
            {
                "Bestand": name,
                "Berichttype": berichttype,
                "Regels": str(len(file_rows)),
                "DubbelVerwijderd": "" if is_part else str(removed.get(berichttype, 0)),
                **period,
            }
        )
    for file in extra:
        files.append(file)
        summary.append(
            {
                "Bestand": file.name,
                "Berichttype": "",
                "Regels": str(file.rows),
                "DubbelVerwijderd": "",
                **period,
            }
        )
    # A berichttype whose every message was a duplicate still shows its count.
    for berichttype in sorted(set(removed) - berichttypes_with_file):
        summary.append(
            {
                "Bestand": "",
                "Berichttype": berichttype,
                "Regels": "0",
                "DubbelVerwijderd": str(removed[berichttype]),
                **period,
            }
        )
    files.append(CsvFile(SUMMARY_FILE, csv_bytes(list(SUMMARY_COLUMNS), summary), len(summary)))
    return files


def zip_files(entries: Iterable[tuple[str, bytes]], moment: datetime) -> bytes:
    """A ZIP (deflated) of (name, data) entries, every entry stamped with ``moment``."""
    out = io.BytesIO()
    stamp = moment.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return out.getvalue()
