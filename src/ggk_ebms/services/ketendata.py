"""Ketendata use cases: export, list, fetch (Ophalen), delete, retention, key rotation, schedule.

Every function takes a ``KetendataContext`` first. Exports and downloads are written to the audit
trail through ``audit`` alone (docs/ketendata.md "Audit"), never with file contents.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.config import Settings
from ggk_ebms.errors import ConfigError, GgkEbmsError, StufError, XmlError
from ggk_ebms.ketendata import schedule
from ggk_ebms.ketendata.dedupe import dedupe_key, geschoond
from ggk_ebms.ketendata.fileset import build_files, zip_files
from ggk_ebms.ketendata.flatten import MessageMeta, Row, flatten
from ggk_ebms.ketendata.hashing import KeyedHasher, new_key, read_key, write_key
from ggk_ebms.ketendata.koppel import koppel_file
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE
from ggk_ebms.payloads.detect import PayloadInfo, detect
from ggk_ebms.runtime import Runtime
from ggk_ebms.services import koppeltabel
from ggk_ebms.store.audit import AuditLog
from ggk_ebms.store.db import Database
from ggk_ebms.store.ketendata import ExportInfo, FileInfo, KetendataStore, NewFile, SourceMessage
from ggk_ebms.store.koppeltabel import KoppelStore
from ggk_ebms.stuf.envelope import parse_envelope
from ggk_ebms.stuf.model import PayloadKind

log = logging.getLogger(__name__)

SCHEDULE_POLL_SECONDS: Final = 60.0


@dataclass
class KetendataContext:
    settings: Settings
    database: Database
    clock: Clock = field(default_factory=SystemClock)
    actor: str = "system"  # who asked: an operator name from the CLI, "schedule" for serve


def audit(ctx: KetendataContext, action: str, detail: str) -> None:
    """The single audit write of this module: action and safe detail (no file contents)."""
    AuditLog(ctx.database).record(
        at=ctx.clock.now(), actor=ctx.actor, action=action, subject="ketendata", detail=detail
    )


# --- key ------------------------------------------------------------------------------------------
def _hasher(ctx: KetendataContext, *, create: bool) -> KeyedHasher:
    path = ctx.settings.effective_ketendata_key_file
    if create and not path.exists():
        write_key(path, new_key())
        log.warning("ketendata: new key created in %s", path)
    hasher = KeyedHasher(read_key(path))
    KetendataStore(ctx.database).record_key(hasher.key_id, ctx.clock.now())
    return hasher


@dataclass(frozen=True)
class KeyRotation:
    old_key_id: str | None
    new_key_id: str
    activated_at: datetime


def rotate_key(ctx: KetendataContext) -> KeyRotation:
    """Replace the key. Hashes made with the new key no longer join those of earlier exports."""
    path = ctx.settings.effective_ketendata_key_file
    old = KeyedHasher(read_key(path)).key_id if path.exists() else None
    write_key(path, new_key())
    now = ctx.clock.now()
    hasher = KeyedHasher(read_key(path))
    KetendataStore(ctx.database).record_key(hasher.key_id, now)
    audit(ctx, "ketendata.rotate-key", f"old={old} new={hasher.key_id}")
    return KeyRotation(old, hasher.key_id, now)


def keys(ctx: KetendataContext) -> list[tuple[str, datetime]]:
    return KetendataStore(ctx.database).keys()


# --- export ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportRequest:
    kind: str  # "weekly" (all not delivered before), "period" or "historie"
    since: datetime | None = None
    until: datetime | None = None
    # Only messages of these gemeenten (a samenwerkingsverband's set per gemeente); None: all.
    # Not for the weekly set, whose 'geschoond' bookkeeping covers the whole installation.
    gemeentecodes: frozenset[str] | None = None


@dataclass(frozen=True)
class ExportResult:
    export_pk: int
    kind: str
    since: datetime | None
    until: datetime
    messages: int
    duplicates: int
    skipped: int  # messages whose content is no iStandaarden payload (e.g. CBS CSV files)
    files: list[tuple[str, int]]  # (file name, rows)


@dataclass(frozen=True)
class _Prepared:
    source: SourceMessage
    info: PayloadInfo
    payload: bytes
    stuf_referentienummer: str
    key: str


def _prepare(source: SourceMessage, hasher: KeyedHasher) -> _Prepared | None:
    try:
        stuf = parse_envelope(source.envelope)
        if stuf.payload is None or stuf.payload.kind is not PayloadKind.XML:
            return None
        info = detect(stuf.payload.data)
    except (StufError, XmlError):
        return None
    key = dedupe_key(info, stuf.payload.data, hasher)
    return _Prepared(source, info, stuf.payload.data, stuf.referentienummer, key)


def _meta(prepared: _Prepared) -> MessageMeta:
    info = prepared.info
    entry = DEFAULT_CATALOGUE.get(info.berichttype)
    gemeente = agb = ""
    if entry is not None:
        gemeente = info.header_value(entry.gemeente_field.value) or ""
        if entry.other_field is not None:
            agb = info.header_value(entry.other_field) or ""
    source = prepared.source
    return MessageMeta(
        ebms_message_id=source.message_id,
        ebms_conversation_id=source.conversation_id,
        richting="ontvangen" if source.direction == "in" else "verzonden",
        tijdstip=source.passed_at,
        gemeentecode=gemeente,
        aanbieder_agb=agb,
        berichttype=info.berichttype,
        stuf_referentienummer=prepared.stuf_referentienummer,
    )


def export(ctx: KetendataContext, request: ExportRequest) -> ExportResult:
    """Build and store one file set. Weekly: everything after the last weekly export, with
    messages delivered by an earlier weekly export left out (geschoond across weeks)."""
    if request.kind not in ("weekly", "period", "historie"):
        raise ConfigError(f"unknown Ketendata export kind {request.kind!r}")
    store = KetendataStore(ctx.database)
    now = ctx.clock.now()
    until = request.until or now
    since = request.since
    if request.kind == "weekly":
        since = store.last_until("weekly")
    elif request.kind == "historie" and since is None:
        raise ConfigError("a historie export needs a start date (--since)")
    if request.gemeentecodes is not None and request.kind == "weekly":
        raise ConfigError("a Ketendata set per gemeente is a period or historie export (--since)")
    if since is not None and since >= until:
        raise ConfigError("the Ketendata period is empty: since is not before until")
    hasher = _hasher(ctx, create=True)

    prepared: list[_Prepared] = []
    skipped = 0
    for source in store.passed(since, until):
        item = _prepare(source, hasher)
        if item is None:
            skipped += 1
        elif request.gemeentecodes is None or _meta(item).gemeentecode in request.gemeentecodes:
            prepared.append(item)
    seen = store.seen({p.key for p in prepared}) if request.kind == "weekly" else frozenset()
    kept, removed, kept_keys = geschoond(
        prepared, (p.key for p in prepared), (p.info.berichttype for p in prepared), seen
    )
    rows: list[Row] = []
    for item in kept:
        rows.extend(flatten(item.payload, _meta(item), hasher))
    # The koppeltabel of the set: relations whose later message is in it (docs/ketendata.md).
    koppeltabel.catch_up(ctx.database, ctx.clock)
    relations = KoppelStore(ctx.database).relations(
        [item.source.pk for item in kept], gemeentecodes=request.gemeentecodes
    )
    extra = [koppel_file(relations, hasher)]
    files = build_files(rows, removed=removed, since=since, until=until, extra=extra)
    duplicates = sum(removed.values())
    export_pk = store.save_export(
        kind=request.kind,
        since=since,
        until=until,
        key_id=hasher.key_id,
        messages=len(kept),
        duplicates=duplicates,
        now=now,
        expires_at=now + timedelta(days=ctx.settings.ketendata_retention_days),
        files=[NewFile(f.name, f.data, f.rows) for f in files],
        delivered_keys=kept_keys if request.kind == "weekly" else (),
    )
    audit(
        ctx,
        "ketendata.export",
        f"export={export_pk} kind={request.kind} messages={len(kept)} duplicates={duplicates} "
        f"files={len(files)}",
    )
    return ExportResult(
        export_pk,
        request.kind,
        since,
        until,
        len(kept),
        duplicates,
        skipped,
        [(f.name, f.rows) for f in files],
    )


# --- pick-up (Ophalen) ----------------------------------------------------------------------------
def list_files(ctx: KetendataContext, *, include_fetched: bool = True) -> list[FileInfo]:
    return KetendataStore(ctx.database).files(include_fetched=include_fetched)


def list_exports(ctx: KetendataContext) -> list[ExportInfo]:
    return KetendataStore(ctx.database).exports()


def fetch_files(ctx: KetendataContext, pks: list[int]) -> list[FileInfo]:
    """The files with their data; each gets its gelezen mark."""
    files = KetendataStore(ctx.database).fetch(pks, ctx.clock.now())
    audit(ctx, "ketendata.download", "files=" + ",".join(str(f.pk) for f in files))
    return files


@dataclass(frozen=True)
class ZipResult:
    data: bytes
    files: int


def fetch_new_as_zip(ctx: KetendataContext) -> ZipResult | None:
    """All files not downloaded before as one ZIP (entries ``<export>/<file>``); None if none."""
    store = KetendataStore(ctx.database)
    new = store.files(include_fetched=False)
    if not new:
        return None
    files = store.fetch([f.pk for f in new], ctx.clock.now())
    exports = {e.pk: e for e in store.exports()}

    def folder(f: FileInfo) -> str:
        export_ = exports.get(f.export_pk)
        stamp = export_.created_at.strftime("%Y%m%d") if export_ else "onbekend"
        return f"ketendata-{f.export_pk}-{stamp}"

    data = zip_files(((f"{folder(f)}/{f.filename}", f.data or b"") for f in files), ctx.clock.now())
    audit(ctx, "ketendata.download", "zip files=" + ",".join(str(f.pk) for f in files))
    return ZipResult(data, len(files))


def delete_export(ctx: KetendataContext, export_pk: int) -> int:
    removed = KetendataStore(ctx.database).delete_export(export_pk)
    audit(ctx, "ketendata.delete", f"export={export_pk} files={removed}")
    return removed


def purge_expired(ctx: KetendataContext) -> int:
    """Delete exports past their retention (ketendata_retention_days); the number deleted."""
    store = KetendataStore(ctx.database)
    expired = store.expired(ctx.clock.now())
    for pk in expired:
        store.delete_export(pk)
        audit(ctx, "ketendata.retention", f"export={pk}")
    return len(expired)


# --- schedule -------------------------------------------------------------------------------------
def _slot_settings(settings: Settings) -> tuple[int, Any, Any]:
    return (
        schedule.parse_day(settings.ketendata_schedule_day),
        schedule.parse_time(settings.ketendata_schedule_time),
        schedule.zone(settings.ketendata_timezone),
    )


def run_schedule_once(ctx: KetendataContext) -> ExportResult | None:
    """Purge expired exports, then make the weekly export if its slot has come."""
    purge_expired(ctx)
    weekday, at, tz = _slot_settings(ctx.settings)
    store = KetendataStore(ctx.database)
    last = store.last_until("weekly")
    slot = schedule.due_slot(ctx.clock.now(), last, weekday=weekday, at=at, tz=tz)
    if slot is None:
        return None
    if last is None and not store.any_passed(slot):
        # A fresh installation: the first weekly set comes at the first slot with traffic
        # before it, not as an empty set at the first start.
        return None
    return export(ctx, ExportRequest("weekly", until=slot))


def ketendata_task(
    settings: Settings, *, clock: Clock | None = None, interval: float = SCHEDULE_POLL_SECONDS
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A factory for ``server.run.start_endpoint(workers=[...])``: check the schedule every minute."""
    _slot_settings(settings)  # a bad day, time or zone stops `serve` at start, not on Sunday

    async def run(runtime: Runtime) -> None:
        ctx = KetendataContext(settings, runtime.database, clock or runtime.clock, actor="schedule")
        while True:
            try:
                result = await asyncio.to_thread(run_schedule_once, ctx)
                if result is not None:
                    log.warning(
                        "ketendata: weekly export %d made (%d messages)", result.export_pk, result.messages
                    )
            except GgkEbmsError as exc:
                log.error("ketendata: weekly export failed, trying again later: %s", exc)
            await asyncio.sleep(interval)

    return run
