"""Downloads of the console: the verslag as CSV and PDF, the berichtenlog as CSV (pure but for fpdf2).

CSV uses ``;`` (what Dutch spreadsheet settings expect) and UTF-8 with a byte order mark, so a
spreadsheet opens accents correctly. Cells starting with = + - @ are prefixed with ' (OWASP CSV
injection) because file names and foutomschrijvingen come from uploads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from aiohttp import web
from fpdf import FPDF

from ggk_ebms.services.aanleveren import Verslag
from ggk_ebms.services.berichtenlog import LogRow


def _cell(value: object) -> str:
    text = (
        "" if value is None else (f"{value:%Y-%m-%d %H:%M:%S}" if hasattr(value, "strftime") else str(value))
    )
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def verslag_csv(v: Verslag) -> bytes:
    return _csv(
        ["batch", "bestand", "uitkomst", "berichttype", "gemeentecode", "referentienummer",
         "foutomschrijving", "fout_detail"],
        ([v.batch, f.bestand, f.uitkomst, f.berichttype, f.gemeentecode, f.referentienummer,
          f.foutomschrijving, f.fout_detail] for f in v.bestanden),
    )  # fmt: skip


def log_csv(rows: Iterable[LogRow]) -> bytes:
    return _csv(
        ["tijdstip", "richting", "status", "berichttype", "gemeentecode", "referentienummer", "zender",
         "ontvanger", "aanbieder_naam", "message_id", "cpa_id", "stuf_fout", "gelezen"],
        ([r.tijdstip, r.direction, r.status, r.berichttype, r.gemeentecode, r.referentienummer, r.zender,
          r.ontvanger, r.aanbieder_naam, r.message_id, r.cpa_id, r.stuf_fout, r.gelezen] for r in rows),
    )  # fmt: skip


def _latin(text: object) -> str:
    # The PDF core fonts are Latin-1; anything else becomes '?' rather than failing the download.
    return ("" if text is None else str(text)).encode("latin-1", "replace").decode("latin-1")


def verslag_pdf(v: Verslag) -> bytes:
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(f"Verwerkingsverslag {v.batch}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 10, _latin(f"Verwerkingsverslag batch {v.batch}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for label, value in (
        ("Bestandsnaam", v.bestandsnaam),
        ("Verzender", v.verzender),
        ("Status", v.status),
        ("Ingeleverd op", f"{v.ingeleverd_op:%d-%m-%Y %H:%M}"),
        ("Verwerkingsduur", v.verwerkingsduur),
        (
            "Aangeleverd / correct / incorrect",
            f"{v.aantal_aangeleverd} / {v.aantal_correct} / {v.aantal_incorrect}",
        ),
    ):
        pdf.cell(0, 6, _latin(f"{label}: {value or ''}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 6, "Bestanden", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for f in v.bestanden:
        line = f"{f.bestand}: {f.uitkomst}"
        if f.foutomschrijving:
            line += f" - {f.foutomschrijving}"
        if f.fout_detail:
            line += f" ({f.fout_detail})"
        pdf.multi_cell(0, 5, _latin(line), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def download(data: bytes, filename: str, content_type: str) -> web.Response:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:200]
    return web.Response(
        body=data,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{safe}"', "Cache-Control": "no-store"},
    )
