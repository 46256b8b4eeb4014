"""CBS Monitor Sociaal Domein use cases: deliver CSV files, send the opt-in, take in the PDF
reports, list deliveries with their status, and send reminders (docs/cbs.md).

Every function takes a ``CbsContext`` first. Deliveries, opt-ins and received reports are
written to the audit trail through ``audit`` alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from ggk_ebms.cbs import envelope as cbs_envelope
from ggk_ebms.cbs.names import (
    MAX_CSV_BYTES,
    CbsFileName,
    CbsNameError,
    CsvUpload,
    check_name,
    csvs_from_zip,
)
from ggk_ebms.cbs.notify import due_reminders, periode_of
from ggk_ebms.cbs.referentie import unique_referentienummer
from ggk_ebms.cbs.toestemming import Gebruiker, Toestemming, toestemming_csv
from ggk_ebms.clock import Clock, IdGenerator, SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery.outbound import queue_stuf
from ggk_ebms.errors import ConfigError, GgkEbmsError, StufError, XmlError
from ggk_ebms.gemeentecodes import cbs_gemeentecodes
from ggk_ebms.runtime import Runtime
from ggk_ebms.services.mail import MailError, send_mail
from ggk_ebms.spool import SpooledRange, whole
from ggk_ebms.store.audit import AuditLog
from ggk_ebms.store.cbs import CbsStore, StoredDelivery, StoredReport
from ggk_ebms.store.db import Database
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.messages import StoredMessage
from ggk_ebms.stuf.envelope import parse_envelope

log = logging.getLogger(__name__)

REPORT_KIND: Final = "CBS rapport"  # mailbox berichttype of a CBS report (the kind in Ophalen)
REMINDER_POLL_SECONDS: Final = 3600.0


@dataclass
class CbsContext:
    settings: Settings
    database: Database
    clock: Clock = field(default_factory=SystemClock)
    ids: IdGenerator = field(default_factory=UuidIdGenerator)
    actor: str = "system"


def audit(ctx: CbsContext, action: str, detail: str) -> None:
    """The single audit write of this module: action and safe detail (names, numbers; no content)."""
    AuditLog(ctx.database).record(
        at=ctx.clock.now(), actor=ctx.actor, action=action, subject="cbs", detail=detail
    )


def _now_half(ctx: CbsContext) -> tuple[int, int]:
    periode = periode_of(ctx.clock.now().date())
    return periode.jaar, periode.halfjaar


# --- reading the files ------------------------------------------------------------------------------
def read_uploads(paths: Sequence[Path]) -> list[CsvUpload]:
    """The CSVs named on the command line; a ZIP gives its CSVs (rule CBS-Z1). Contents unchanged."""
    uploads: list[CsvUpload] = []
    for path in paths:
        try:
            size = path.stat().st_size
            if size > MAX_CSV_BYTES * 4:
                raise CbsNameError(path.name, "CBS-Z1", f"{size} bytes is te groot")
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"kan {path} niet lezen: {exc.strerror or exc}") from None
        if path.name.lower().endswith(".zip"):
            uploads.extend(csvs_from_zip(path.name, data))
        else:
            if len(data) > MAX_CSV_BYTES:
                raise CbsNameError(path.name, "CBS-Z1", f"groter dan {MAX_CSV_BYTES} bytes")
            uploads.append(CsvUpload(path.name, data))
    return uploads


# --- delivering ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileResult:
    name: str
    accepted: bool
    detail: str  # Dutch, for the user: the rule broken or what happened
    referentienummer: str | None = None
    delivery_pk: int | None = None
    message_id: str | None = None


def _cpa_id(ctx: CbsContext) -> str:
    if not ctx.settings.cbs_cpa_id:
        raise ConfigError("cbs_cpa_id is niet ingesteld: de CPA met RINIS voor CBS-leveringen ontbreekt")
    return ctx.settings.cbs_cpa_id


def _send(
    ctx: CbsContext,
    *,
    kind: str,
    functie: str,
    filename: str,
    data: bytes,
    gemeentecode: str,
    cbs_set: str | None,
    verslagperiode: str | None,
) -> FileResult:
    store = CbsStore(ctx.database)
    now = ctx.clock.now()
    referentienummer = unique_referentienummer(now, store.referentienummer_taken)
    built = cbs_envelope.build_delivery(
        gemeentecode=gemeentecode,
        applicatie=ctx.settings.stuf_applicatie,
        functie=functie,
        referentienummer=referentienummer,
        filename=filename,
        data=data,
        ids=ctx.ids,
        moment=now,
    )
    stuf = parse_envelope(built.data)
    stored = queue_stuf(
        ctx.settings,
        ctx.database,
        cpa_id=_cpa_id(ctx),
        stuf=stuf,
        data=built.data,
        gemeentecode=gemeentecode,
        payload_sha256=stuf.payload.sha256 if stuf.payload else None,
        ids=ctx.ids,
        clock=ctx.clock,
    )
    delivery_pk = store.add_delivery(
        kind=kind,
        referentienummer=referentienummer,
        filename=filename,
        cbs_set=cbs_set,
        gemeentecode=gemeentecode,
        verslagperiode=verslagperiode,
        stuf_referentienummer=stuf.referentienummer,
        message_pk=stored.pk,
        data=data,
        now=now,
    )
    audit(
        ctx, f"cbs.{kind}", f"file={filename} referentienummer={referentienummer} message={stored.message_id}"
    )
    return FileResult(filename, True, "verzonden", referentienummer, delivery_pk, stored.message_id)


def aanleveren(ctx: CbsContext, uploads: Sequence[CsvUpload]) -> list[FileResult]:
    """Send each CSV unchanged in its own envelope, one referentienummer each. Every name is
    checked first: when one breaks a rule, nothing is sent (a set goes complete or not at all)."""
    _cpa_id(ctx)
    year, half = _now_half(ctx)
    codes = cbs_gemeentecodes().codes
    checked: list[tuple[CsvUpload, CbsFileName | None, str]] = []
    for upload in uploads:
        try:
            checked.append(
                (
                    upload,
                    check_name(upload.name, gemeentecodes=codes, current_year=year, current_half=half),
                    "",
                )
            )
        except CbsNameError as exc:
            checked.append((upload, None, str(exc)))
    names = [u.name for u in uploads]
    if len(set(names)) != len(names):
        return [FileResult(n, False, "bestandsnaam komt meer dan eens voor in deze levering") for n in names]
    if any(parsed is None for _, parsed, _ in checked):
        return [
            FileResult(
                u.name, False, error or "niet verzonden: een ander bestand van deze levering is geweigerd"
            )
            for u, _, error in checked
        ]
    results: list[FileResult] = []
    for upload, parsed, _ in checked:
        assert parsed is not None
        results.append(
            _send(
                ctx,
                kind="aanlevering",
                functie=ctx.settings.cbs_functie,
                filename=upload.name,
                data=upload.data,
                gemeentecode=parsed.gemeentecode,
                cbs_set=parsed.set.value,
                verslagperiode=parsed.verslagperiode,
            )
        )
    return results


def toestemming(
    ctx: CbsContext, *, gemeentecode: str, gebruiker: Gebruiker, rows: Sequence[Toestemming]
) -> FileResult:
    """Build the opt-in CSV and send it to CBS in its envelope."""
    if gemeentecode not in cbs_gemeentecodes().codes:
        raise ConfigError(f"{gemeentecode!r} is geen CBS-gemeentecode")
    try:
        data = toestemming_csv(gebruiker, rows)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    periode = max(row.verslagperiode for row in rows)
    filename = f"Toestemming_GM{gemeentecode}_{periode}.csv"
    return _send(
        ctx,
        kind="toestemming",
        functie=ctx.settings.cbs_toestemming_functie,
        filename=filename,
        data=data,
        gemeentecode=gemeentecode,
        cbs_set=None,
        verslagperiode=periode,
    )


def deliveries(ctx: CbsContext) -> list[StoredDelivery]:
    return CbsStore(ctx.database).deliveries()


def reports(ctx: CbsContext) -> list[StoredReport]:
    return CbsStore(ctx.database).reports()


# --- reports coming back --------------------------------------------------------------------------
def take_report(
    settings: Settings,
    database: Database,
    message: StoredMessage,
    parts: Sequence[bytes | SpooledRange],
    clock: Clock,
) -> bool:
    """Keep a CBS PDF report in the mailbox (kind 'CBS rapport'), linked to its delivery.

    Called by the delivery worker before the iWmo/iJw checks, which would refuse a PDF. Only a
    message that came over the CBS CPA counts: anyone else claiming to be CBS is left to those
    checks (and refused there). False: not a CBS report."""
    if not settings.cbs_cpa_id or message.cpa_id != settings.cbs_cpa_id or not parts:
        return False
    try:
        stuf = parse_envelope(parts[0])
    except (StufError, XmlError):
        return False
    if not cbs_envelope.is_cbs_report(stuf, settings.cbs_rapport_functie):
        return False
    report = cbs_envelope.read_report(stuf)
    store = CbsStore(database)
    delivery_pk = store.find_delivery(
        stuf_referentienummer=report.cross_ref, referentienummer=report.cbs_referentienummer
    )
    now = clock.now()
    item_pk = Mailbox(database, clock).put(
        message_pk=message.pk,
        route_name="cbs",
        gemeentecode=report.gemeentecode,
        berichttype=REPORT_KIND,
        referentienummer=report.cbs_referentienummer or report.stuf_referentienummer,
        zender=cbs_envelope.CBS_ORGANISATIE,
        filename=report.filename,
        payload=report.pdf,
        envelope=whole(parts[0]),
    )
    store.add_report(mailbox_item_pk=item_pk, delivery_pk=delivery_pk, filename=report.filename, now=now)
    ctx = CbsContext(settings, database, clock, actor="cbs")
    audit(ctx, "cbs.rapport", f"file={report.filename} mailbox={item_pk} delivery={delivery_pk}")
    answered = (
        f"bij levering {report.cbs_referentienummer}" if report.cbs_referentienummer else "zonder levering"
    )
    try:
        send_mail(
            settings,
            f"CBS-rapport ontvangen: {report.filename}",
            f"Er staat een rapport van CBS klaar in Ophalen (item {item_pk}): {report.filename}, "
            f"{answered}.\nHaal het op met: ggk-ebms mailbox fetch {item_pk} -o {report.filename}\n",
        )
    except (MailError, ConfigError) as exc:
        log.error("cbs: report %s kept, but the e-mail failed: %s", item_pk, exc)
    return True


# --- reminders ----------------------------------------------------------------------------------------
_REMINDER_TEXT: Final = {
    "aanleveren": (
        "Herinnering: CBS-levering {periode}",
        "De aanleverperiode voor de Monitor Sociaal Domein over {periode} is op {datum} begonnen en er "
        "is nog geen bestand aangeleverd.\nLever aan met: ggk-ebms cbs aanleveren BESTAND.csv|BESTAND.zip\n",
    ),
    "toestemming": (
        "Herinnering: CBS-toestemming {periode}",
        "De toestemming voor de Monitor Sociaal Domein over {periode} wordt gevraagd sinds {datum} en is "
        "nog niet gegeven.\nGeef haar met: ggk-ebms cbs toestemming\n",
    ),
}


def remind(ctx: CbsContext) -> list[str]:
    """Send the reminders that are due and not sent within cbs_reminder_days; their subjects."""
    store = CbsStore(ctx.database)
    now = ctx.clock.now()
    due = due_reminders(
        now.date(),
        delivered=store.periods("aanlevering"),
        consented=store.periods("toestemming"),
        offset_months=ctx.settings.cbs_delivery_offset_months,
        toestemming_after_days=ctx.settings.cbs_toestemming_after_days,
    )
    sent: list[str] = []
    for reminder in due:
        last = store.last_notified(reminder.kind, reminder.periode.text)
        if last is not None and now - last < timedelta(days=ctx.settings.cbs_reminder_days):
            continue
        subject, body = _REMINDER_TEXT[reminder.kind]
        values = {"periode": reminder.periode.text, "datum": reminder.due_from.isoformat()}
        if send_mail(ctx.settings, subject.format(**values), body.format(**values)):
            store.notified(reminder.kind, reminder.periode.text, now)
            sent.append(subject.format(**values))
    return sent


def reminder_task(
    settings: Settings, *, clock: Clock | None = None, interval: float = REMINDER_POLL_SECONDS
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A factory for ``server.run.start_endpoint(workers=[...])``: check reminders every hour."""

    async def run(runtime: Runtime) -> None:
        ctx = CbsContext(settings, runtime.database, clock or runtime.clock, actor="schedule")
        while True:
            try:
                await asyncio.to_thread(remind, ctx)
            except GgkEbmsError as exc:
                log.error("cbs: reminders failed, trying again later: %s", exc)
            await asyncio.sleep(interval)

    return run
