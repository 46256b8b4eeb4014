"""Aanleveren: a ZIP (or one XML) of StUF envelopes or bare payloads becomes a batch with a verslag.

The GGk portal's flow (IB handleidingen GGk and berichtuitwisseling: Aanleveren and the
verwerkingsverslag): the upload is
*Ontvangen*, then *Bezig* with an expected end, then *Afgeleverd* (every file correct and queued
for sending) or *Afgekeurd* (one or more files incorrect; the correct ones are still sent). Per
file: safe unpacking (``aanlevering.upload``), detect, validate, gemeentecode authorisation, wrap
a bare payload, queue (``delivery.submit.Submitter``, the same path as ``submit``). A file already
sent (same content, and the same referentienummer for a ready envelope) is reported as
*al verzonden* and not sent twice, so uploading a ZIP again is harmless, as the portal promises.
File-level refusals (not a .zip/.xml, over 1 GB, not a valid ZIP) raise ``UploadRefused``: no
batch, no verslag, but an audit record.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ggk_ebms.aanlevering import checks
from ggk_ebms.aanlevering.checks import Fout
from ggk_ebms.aanlevering.estimate import duration_text, expected_end
from ggk_ebms.aanlevering.upload import (
    Entry,
    Limits,
    UploadRefused,
    check_size,
    open_zip,
    single_xml,
    upload_kind,
    zip_entries,
)
from ggk_ebms.delivery.submit import Submitter
from ggk_ebms.errors import CpaError, GgkEbmsError, StoreUnavailableError, StufError, XmlError
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Party
from ggk_ebms.payloads.detect import detect
from ggk_ebms.services import audit, koppeltabel, zorgaanbieders
from ggk_ebms.services.context import NotFoundError, ServiceContext, ServiceError
from ggk_ebms.store.aanlevering import BatchStore, NewFile, StoredBatch, StoredFile
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.stuf.codes import StufCode
from ggk_ebms.stuf.envelope import MAX_SEND_BYTES, parse_envelope
from ggk_ebms.stuf.model import MessageKind
from ggk_ebms.zorgaanbieders import AGB

AUTOMATIC_ACTOR = "outbox"  # aanlevering.outbox.ACTOR: the outbox folder, no person

__all__ = [
    "BatchQuery",
    "FileResult",
    "Upload",
    "UploadRefused",
    "Verslag",
    "aanleveren",
    "identify_file",
    "list_batches",
    "onderbroken",
    "ontvang",
    "refusal_of",
    "verslag",
    "verwerk",
]


@dataclass(frozen=True)
class Upload:
    """An uploaded file: the name the user gave it and where its bytes are (CLI: the file itself;
    API: a spooled temporary file)."""

    bestandsnaam: str
    path: Path
    # The berichttypes the uploader may send (the console: their products); None: any. A file of
    # another berichttype is incorrect and not sent.
    berichttypes: frozenset[str] | None = None


@dataclass(frozen=True)
class FileResult:
    bestand: str
    uitkomst: str  # correct | al verzonden | incorrect
    foutomschrijving: str | None
    fout_detail: str | None
    berichttype: str | None
    gemeentecode: str | None
    referentienummer: str | None
    message_pk: int | None  # the queued message, or the earlier one for "al verzonden"


@dataclass(frozen=True)
class Verslag:
    """The verwerkingsverslag with the portal's fields (GGk handleiding: verwerkingsverslag)."""

    batch: int
    bestandsnaam: str
    verzender: str
    status: str
    ingeleverd_op: datetime
    begin_verwerking: datetime | None
    verwacht_einde: datetime | None
    einde_verwerking: datetime | None
    verwerkingsduur: str | None  # hh:mm:ss once finished
    aantal_aangeleverd: int
    aantal_correct: int
    aantal_incorrect: int
    fouten: tuple[FileResult, ...]  # per incorrect file: bestand, foutomschrijving, fout detail
    bestanden: tuple[FileResult, ...]  # every file, correct ones too


@dataclass(frozen=True)
class BatchQuery:
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    limit: int = 50
    offset: int = 0


def _limits(ctx: ServiceContext) -> Limits:
    s = ctx.settings
    return Limits(
        max_zip_bytes=s.aanlever_max_zip_bytes,
        max_entries=s.aanlever_max_entries,
        max_ratio=s.aanlever_max_ratio,
        max_total_bytes=s.aanlever_max_total_bytes,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def ontvang(ctx: ServiceContext, upload: Upload) -> Verslag:
    """File-level checks and a new batch in status Ontvangen. Raises UploadRefused (no batch)."""
    try:
        kind = upload_kind(upload.bestandsnaam)
        try:
            size = upload.path.stat().st_size
        except OSError as exc:
            raise UploadRefused(f"{upload.bestandsnaam}: kan niet worden gelezen ({exc.strerror})") from None
        check_size(upload.bestandsnaam, size, _limits(ctx))
        if kind == "zip":
            with upload.path.open("rb") as stream:
                open_zip(stream, upload.bestandsnaam).close()
    except UploadRefused as exc:
        audit.record(ctx, "aanlevering-geweigerd", upload.bestandsnaam[:255], str(exc))
        raise
    batch = BatchStore(ctx.database).create(
        bestandsnaam=upload.bestandsnaam[:255],
        verzender=ctx.actor[:255],
        size=size,
        sha256=_sha256(upload.path),
        at=ctx.clock.now(),
    )
    audit.record(ctx, "aanlevering", f"batch {batch.pk}", f"{upload.bestandsnaam} ({size} bytes)")
    return _verslag(batch, [])


def _entries(ctx: ServiceContext, upload: Upload) -> Iterator[tuple[int, Iterator[Entry]]]:
    limits = _limits(ctx)
    if upload_kind(upload.bestandsnaam) == "xml":
        size = upload.path.stat().st_size
        if size > limits.max_entry_bytes:
            fout = Fout(checks.TE_GROOT, f"{size} bytes, maximaal {limits.max_entry_bytes} (25 MB)")
            yield 1, iter([Entry(upload.bestandsnaam, size, None, fout)])
        else:
            yield 1, iter([single_xml(upload.bestandsnaam, upload.path.read_bytes(), limits)])
        return
    with upload.path.open("rb") as stream:
        archive = open_zip(stream, upload.bestandsnaam)
        with archive:
            count = len(archive.infolist())
            shown = count if count <= limits.max_entries else 1
            yield shown, zip_entries(archive, upload.bestandsnaam, limits)


def verwerk(ctx: ServiceContext, batch_pk: int, upload: Upload) -> Verslag:
    """Process a batch in status Ontvangen: Bezig (expected end), every file, the final status."""
    store = BatchStore(ctx.database)
    if store.get(batch_pk).status != "Ontvangen":
        raise ServiceError(f"aanlevering {batch_pk} is al verwerkt of wordt verwerkt")
    submitter = Submitter(ctx.settings, ctx.database, ids=ctx.ids, clock=ctx.clock)
    served = served_gemeentecodes(ctx)
    for count, entries in _entries(ctx, upload):
        start = ctx.clock.now()
        store.start(
            batch_pk, at=start, expected_end=expected_end(start, count, store.throughput()), files=count
        )
        for seq, entry in enumerate(entries, 1):
            judged = _judge(ctx, submitter, served, seq, entry, upload.berichttypes)
            store.add_file(batch_pk, judged, at=ctx.clock.now())
    batch = store.finish(batch_pk, at=ctx.clock.now())
    # The koppeltabel links what was just submitted to the traffic before it (docs/koppeltabel.md).
    # Bounded: the batch's own messages are the newest; serve reads any older backlog.
    koppeltabel.catch_up(ctx.database, ctx.clock, limit=max(1000, 2 * batch.aangeleverd))
    return _verslag(batch, store.files(batch_pk))


def aanleveren(ctx: ServiceContext, upload: Upload) -> Verslag:
    """``ontvang`` and ``verwerk`` in one go (the CLI; the API may run ``verwerk`` in the background)."""
    received = ontvang(ctx, upload)
    return verwerk(ctx, received.batch, upload)


def verslag(ctx: ServiceContext, batch_pk: int) -> Verslag:
    store = BatchStore(ctx.database)
    try:
        batch = store.get(batch_pk)
    except GgkEbmsError:
        raise NotFoundError(f"geen aanlevering {batch_pk}") from None
    return _verslag(batch, store.files(batch_pk))


def list_batches(ctx: ServiceContext, query: BatchQuery) -> tuple[Verslag, ...]:
    """The upload list, newest first, without per-file lines (``verslag`` has those)."""
    batches = BatchStore(ctx.database).list(
        since=query.since, until=query.until, status=query.status, limit=query.limit, offset=query.offset
    )
    return tuple(_verslag(batch, []) for batch in batches)


def onderbroken(ctx: ServiceContext, idle: timedelta) -> tuple[Verslag, ...]:
    """Mark batches that a crash or stop left in Ontvangen or Bezig as Onderbroken (``serve``
    does this at start and then regularly; docs/operations.md).

    A batch is taken as left behind once it has shown no progress for ``idle``: a running batch
    adds a file every few milliseconds, so another process's work is not cut off. It is not
    resumed: the uploaded file is not kept. The files it got to keep their verslag lines and
    their queued messages (nothing is queued again); uploading the same file again finishes the
    work, the files already sent being recognised as *al verzonden* and not sent twice."""
    store = BatchStore(ctx.database)
    done: list[Verslag] = []
    for pk in store.idle_unfinished(idle_before=ctx.clock.now() - idle):
        batch = store.interrupt(pk, at=ctx.clock.now())
        if batch is None:
            continue
        files = store.files(pk)
        audit.record(
            ctx,
            "aanlevering-onderbroken",
            f"batch {pk}",
            f"{len(files)} van {batch.aangeleverd or '?'} bestanden verwerkt",
        )
        done.append(_verslag(batch, files))
    return tuple(done)


def served_gemeentecodes(ctx: ServiceContext) -> frozenset[str]:
    """The gemeentecodes we may send for: the setting, else those of the routing table in force."""
    if ctx.settings.served_gemeentecodes:
        return frozenset(ctx.settings.served_gemeentecodes)
    current = RouteStore(ctx.database).current()
    if current is None:
        return frozenset()
    try:
        return current.table().served_gemeentecodes
    except GgkEbmsError:
        return frozenset()


# --- one file -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Identity:
    berichttype: str | None
    gemeentecode: str | None
    referentienummer: str | None
    payload_sha256: str
    aanbieder: str | None = None  # the addressed AGB code (iStandaarden LDT_AgbCode), if any


class _Refused(Exception):
    def __init__(self, fout: Fout, identity: _Identity | None = None) -> None:
        super().__init__(fout.foutomschrijving)
        self.fout = fout
        self.identity = identity


def _identify(data: bytes) -> _Identity:
    """Berichttype, gemeentecode and referentienummer of a ready envelope or a bare payload."""
    try:
        stuf = parse_envelope(data, max_bytes=MAX_SEND_BYTES)
    except XmlError as exc:
        raise _Refused(Fout(checks.XSD, f"{checks.XSD}: geen geldige XML ({exc})")) from None
    except StufError as exc:
        if exc.code != StufCode.BERICHTCODE_UNKNOWN or exc.stuurgegevens is not None:
            raise _Refused(Fout(checks.XSD, f"{checks.XSD}: {exc}")) from None
        return _identify_payload(data)
    sg = stuf.stuurgegevens
    identity = _Identity(
        berichttype=stuf.functie,
        gemeentecode=sg.zender.organisatie,
        referentienummer=sg.referentienummer,
        payload_sha256=stuf.payload.sha256 if stuf.payload else hashlib.sha256(data).hexdigest(),
        aanbieder=sg.ontvanger.organisatie if AGB.fullmatch(sg.ontvanger.organisatie) else None,
    )
    if stuf.kind not in (MessageKind.DI01, MessageKind.DU01, MessageKind.FO01):
        raise _Refused(
            Fout(checks.BERICHTTYPE, f"een {stuf.kind.value} wordt niet door een gemeente verzonden"),
            identity,
        )
    if stuf.kind.is_envelope and (stuf.functie is None or DEFAULT_CATALOGUE.get(stuf.functie) is None):
        raise _Refused(
            Fout(checks.BERICHTTYPE, f"functie {stuf.functie!r} staat niet in de berichtencatalogus"),
            identity,
        )
    return identity


def _identify_payload(data: bytes) -> _Identity:
    digest = hashlib.sha256(data).hexdigest()
    try:
        info = detect(data, max_bytes=MAX_SEND_BYTES)
    except StufError as exc:
        raise _Refused(Fout(checks.XSD, f"{checks.XSD}: {exc}")) from None
    entry = DEFAULT_CATALOGUE.get(info.berichttype)
    if entry is None:
        raise _Refused(
            Fout(checks.BERICHTTYPE, f"berichttype {info.berichttype} staat niet in de berichtencatalogus"),
            _Identity(info.berichttype, None, None, digest),
        )
    gemeentecode = info.header_value(entry.gemeente_field.value)
    other = info.header_value(entry.other_field) if entry.other_field else None
    identity = _Identity(
        info.berichttype, gemeentecode, None, digest, other if other and AGB.fullmatch(other) else None
    )
    if entry.sender is not Party.GEMEENTE:
        raise _Refused(
            Fout(
                checks.BERICHTTYPE,
                f"{entry.berichttype} wordt verzonden door een {entry.sender.value}, niet door een gemeente",
            ),
            identity,
        )
    return identity


def identify_file(data: bytes) -> _Identity | None:
    """Berichttype, gemeentecode and referentienummer of a file as far as they can be read (for
    recording a refused submission, ``services.indienen``); None when nothing can be read."""
    try:
        return _identify(data)
    except _Refused as exc:
        return exc.identity


def refusal_of(exc: GgkEbmsError) -> Fout:
    """The verslag's foutomschrijving and detail for a refusal by the submit path."""
    return _fout_of(exc)


def _fout_of(exc: GgkEbmsError) -> Fout:
    if isinstance(exc, StufError):
        if exc.code in (
            StufCode.FUNCTIE_UNSUPPORTED,
            StufCode.FUNCTIE_UNKNOWN,
            StufCode.BERICHTCODE_UNSUPPORTED,
        ):
            return Fout(checks.BERICHTTYPE, f"{exc.code}: {exc}")
        if exc.code == StufCode.CROSSREF_UNKNOWN:
            return Fout(checks.HEENBERICHT, f"{exc.code}: {exc}")
        return Fout(checks.XSD, f"{checks.XSD}: {exc}")
    if isinstance(exc, XmlError):
        return Fout(checks.XSD, f"{checks.XSD}: {exc}")
    if isinstance(exc, CpaError):
        return Fout(checks.NIET_VERZONDEN, f"geen bruikbare CPA: {exc}")
    return Fout(checks.NIET_VERZONDEN, str(exc))


def _judge(
    ctx: ServiceContext,
    submitter: Submitter,
    served: frozenset[str],
    seq: int,
    entry: Entry,
    allowed: frozenset[str] | None = None,
) -> NewFile:
    def refused(fout: Fout, identity: _Identity | None = None) -> NewFile:
        return NewFile(
            seq=seq,
            bestand=entry.name[:255],
            size=entry.size,
            outcome="incorrect",
            foutomschrijving=fout.foutomschrijving,
            fout_detail=fout.fout_detail,
            berichttype=identity.berichttype if identity else None,
            gemeentecode=identity.gemeentecode if identity else None,
            referentienummer=identity.referentienummer if identity else None,
            payload_sha256=identity.payload_sha256 if identity else None,
        )

    if entry.fout is not None or entry.data is None:
        return refused(entry.fout or Fout(checks.BESCHADIGD, "niet gelezen"))
    try:
        identity = _identify(entry.data)
    except _Refused as exc:
        return refused(exc.fout, exc.identity)
    if allowed is not None and identity.berichttype not in allowed:
        # Recorded without its identity: the uploader may not see that product's messages.
        detail = f"berichttype {identity.berichttype} hoort niet bij de producten van deze gebruiker"
        return refused(Fout(checks.NIET_GEAUTORISEERD, detail))
    if identity.gemeentecode not in served or not ctx.may_act_for(identity.gemeentecode):
        # The GGk portal's check: the gemeentecode must be one the sender may act for (the
        # installation's, narrowed to the actor's rights per gemeentecode).
        detail = (
            f"Organisatie {identity.gemeentecode} is niet geautoriseerd voor deze aansluiting"
            if served
            else "er zijn geen gemeentecodes ingesteld (setting served_gemeentecodes of een routeringstabel)"
        )
        return refused(Fout(checks.NIET_GEAUTORISEERD, detail), identity)
    store = BatchStore(ctx.database)
    earlier = store.sent_before(
        referentienummer=identity.referentienummer,
        payload_sha256=identity.payload_sha256,
        berichttype=identity.berichttype,
    )
    base = NewFile(
        seq=seq,
        bestand=entry.name[:255],
        size=entry.size,
        outcome="correct",
        berichttype=identity.berichttype,
        gemeentecode=identity.gemeentecode,
        payload_sha256=identity.payload_sha256,
    )
    if earlier is not None:
        return dataclasses.replace(
            base,
            outcome="al verzonden",
            referentienummer=identity.referentienummer,
            fout_detail=f"al verzonden als bericht {earlier}; niet opnieuw verzonden",
            message_pk=earlier,
        )
    # Checked before sending: once sent, the message itself would make the AGB code "seen".
    warning = zorgaanbieders.unknown_warning(ctx, identity.aanbieder)
    try:
        # A person's aanlevering may carry exchanges via Portaal; a ZIP the outbox picks up is
        # automatic and may not (docs/exchanges.md: Portaal sends nothing automatically).
        submitted = submitter.submit(entry.data, manual=ctx.actor != AUTOMATIC_ACTOR)
    except StoreUnavailableError:
        raise  # the database is gone: stop the batch, do not call every file incorrect
    except GgkEbmsError as exc:
        return refused(_fout_of(exc), identity)
    return dataclasses.replace(
        base,
        referentienummer=submitted.stuf.stuurgegevens.referentienummer,
        message_pk=submitted.message.pk,
        fout_detail=warning,  # a correct file's detail holds its warning (docs/zorgaanbieders.md)
    )


def _result(f: StoredFile) -> FileResult:
    return FileResult(
        bestand=f.bestand,
        uitkomst=f.outcome,
        foutomschrijving=f.foutomschrijving,
        fout_detail=f.fout_detail,
        berichttype=f.berichttype,
        gemeentecode=f.gemeentecode,
        referentienummer=f.referentienummer,
        message_pk=f.message_pk,
    )


def _verslag(batch: StoredBatch, files: list[StoredFile]) -> Verslag:
    results = tuple(_result(f) for f in files)
    duration = None
    if batch.einde_verwerking is not None:
        duration = duration_text((batch.einde_verwerking - batch.ingeleverd_op).total_seconds())
    return Verslag(
        batch=batch.pk,
        bestandsnaam=batch.bestandsnaam,
        verzender=batch.verzender,
        status=batch.status,
        ingeleverd_op=batch.ingeleverd_op,
        begin_verwerking=batch.begin_verwerking,
        verwacht_einde=batch.verwacht_einde,
        einde_verwerking=batch.einde_verwerking,
        verwerkingsduur=duration,
        aantal_aangeleverd=batch.aangeleverd,
        aantal_correct=batch.correct,
        aantal_incorrect=batch.incorrect,
        fouten=tuple(r for r in results if r.uitkomst == "incorrect"),
        bestanden=results,
    )
