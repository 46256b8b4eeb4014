"""/api/v1 over the operations services: aanleveren, berichtenlog, ophalen, exchanges, routes,
Ketendata and the audit trail (docs/api.md, "/api/v1 over the services").

Every handler calls the same service function the CLI calls (``ggk_ebms.services``), with a
``ServiceContext`` whose actor is ``api:<token name>``, so the audit trail names the token. The
service errors map to RFC 9457 problems: ``NotFoundError`` 404, any other ``ServiceError`` (and
a refused upload or an invalid routing table) 422. Listings keep the v1 page shape; where a
service pages by "one more row" instead of counting, ``total`` is -1 and ``more`` says whether
another page follows.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import email.policy
import io
import tempfile
from collections.abc import Callable
from datetime import datetime
from email.parser import BytesParser
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import unquote

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, Field

from ggk_ebms.api.operations import MAX_ID, Call, Operation, json_response
from ggk_ebms.api.problem import ProblemError
from ggk_ebms.errors import GgkEbmsError, StoreError, StoreUnavailableError
from ggk_ebms.ketendata.fileset import zip_files
from ggk_ebms.services import aanleveren, audit, berichtenlog, exchanges, ketendata, ophalen, routeren
from ggk_ebms.services.aanleveren import BatchQuery, FileResult, Upload, UploadRefused, Verslag
from ggk_ebms.services.audit import AuditQuery
from ggk_ebms.services.berichtenlog import LogFilter, LogRow
from ggk_ebms.services.context import NotFoundError, ServiceContext, ServiceError
from ggk_ebms.services.exchanges import ExchangeView
from ggk_ebms.services.ophalen import OphaalItem, OphaalQuery
from ggk_ebms.services.routeren import RouteChange, RouteChanged, TargetSpec
from ggk_ebms.store.audit import AuditEvent
from ggk_ebms.store.ketendata import ExportInfo, FileInfo
from ggk_ebms.store.tables import BATCH_STATUSES, NAME_MAX

PREFIX = "/api/v1"
T = TypeVar("T")
R = TypeVar("R")

# An upload over the API is held in a spooled file; bigger ZIPs (the portal allows 1 GB) go
# through the outbox folder or `ggk-ebms aanleveren`, which read from disk.
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
MAX_SELECTION = 500


class MorePage(BaseModel, Generic[T]):
    """The v1 page shape; ``total`` -1: not counted, ``more``: another page follows."""

    items: list[T]
    total: int
    limit: int
    offset: int
    more: bool


class Paging(BaseModel):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class UploadQuery(BaseModel):
    bestandsnaam: str | None = Field(
        default=None,
        min_length=1,
        max_length=NAME_MAX,
        description="the file name as uploaded: *.zip or *.xml (a multipart upload: its filename)",
    )


class BatchListQuery(Paging):
    status: Literal[BATCH_STATUSES] | None = None  # type: ignore[valid-type]
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None


class LogQueryModel(Paging):
    since: AwareDatetime | None = Field(default=None, description="default: until minus 7 days")
    until: AwareDatetime | None = Field(default=None, description="default: now")
    berichttype: str | None = Field(default=None, max_length=32)
    gemeentecode: str | None = Field(default=None, max_length=16)
    direction: Literal["in", "out"] | None = None
    status: str | None = Field(default=None, max_length=32, description="a message status or Geweigerd")
    referentienummer: str | None = Field(default=None, max_length=NAME_MAX)
    batch: int | None = Field(default=None, ge=0, le=MAX_ID)
    include_signals: bool = False
    kind: str | None = Field(default=None, max_length=32)
    cpa_id: str | None = Field(default=None, max_length=NAME_MAX)


class LogPageModel(MorePage[LogRow]):
    since: datetime
    until: datetime


class OphaalQueryModel(BaseModel):
    gemeentecode: str | None = Field(default=None, max_length=16)
    berichttype: str | None = Field(default=None, max_length=32)
    unread: bool = False
    limit: int = Field(default=100, ge=1, le=500)


class Selection(BaseModel):
    # Primary keys: a bigint at most, as the path parameters.
    ids: list[Annotated[int, Field(ge=0, le=MAX_ID)]] = Field(min_length=1, max_length=MAX_SELECTION)


class Changed(BaseModel):
    ids: list[int]


class ExchangeList(BaseModel):
    items: list[ExchangeView]
    total: int
    limit: int
    offset: int
    warnings: list[str]


class ExchangeChange(BaseModel):
    """Only the settings given change; '' clears cpa_id, payload_version or gemeentecodes."""

    via: Literal["Digikoppeling", "Portaal"] | None = None
    status: Literal["actief", "inactief"] | None = None
    stuf_version: str | None = Field(default=None, max_length=16)
    payload_version: str | None = Field(default=None, max_length=16)
    cpa_id: str | None = Field(default=None, max_length=NAME_MAX)
    gemeentecodes: str | None = Field(default=None, max_length=2000, description="comma-separated")


class TargetModel(BaseModel):
    type: Literal["directory", "http", "ebms", "mailbox"]
    path: str | None = Field(default=None, max_length=1024)
    url: str | None = Field(default=None, max_length=2048)
    cpa_id: str | None = Field(default=None, max_length=NAME_MAX)
    service: str | None = Field(default=None, max_length=NAME_MAX)
    action: str | None = Field(default=None, max_length=NAME_MAX)
    write_envelope: bool | None = None
    write_metadata: bool | None = None


class RouteChangeModel(BaseModel):
    """The fields of one route; absent keeps the current value of an existing route."""

    gemeentecode: str | None = Field(default=None, min_length=1, max_length=200)
    berichttype: str | None = Field(default=None, min_length=1, max_length=32)
    target: TargetModel | None = None
    status: Literal["actief", "inactief"] | None = None
    channel: Literal["Digikoppeling", "Portaal"] | None = None
    stuf_version: str | None = Field(default=None, max_length=16)
    payload_version: str | None = Field(default=None, max_length=16)
    allowed_senders: list[str] | None = Field(default=None, max_length=200)


class AuditQueryModel(BaseModel):
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    actor: str | None = Field(default=None, max_length=NAME_MAX)
    action: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


def service_context(call: Call) -> ServiceContext:
    """The services' context for this request: the actor is ``api:<token name>``."""
    c = call.ctx
    return ServiceContext(
        database=c.database,
        settings=c.settings,
        actor=f"api:{call.actor}"[:NAME_MAX],
        clock=c.clock,
        ids=c.ids,
    )


async def run(call: Call, fn: Callable[..., R], *args: Any) -> R:
    """Run a service function off the event loop; its refusals become problems."""
    try:
        return await asyncio.to_thread(fn, service_context(call), *args)
    except NotFoundError as exc:
        raise ProblemError(404, str(exc)) from None
    except (ServiceError, UploadRefused) as exc:
        raise ProblemError(422, str(exc)) from None


# --- aanleveren ------------------------------------------------------------------------------------


def _upload(ctx: ServiceContext, name: str, data: bytes) -> Verslag:
    suffix = Path(name).suffix.lower()[:8]
    with tempfile.TemporaryDirectory(prefix="ggk-ebms-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        return aanleveren.aanleveren(ctx, Upload(name, path))


def multipart_file(content_type: str, body: bytes) -> tuple[str, bytes]:
    """The first file part of a multipart/form-data body (RFC 7578): its filename and bytes.

    The body is already within the upload limit; the stdlib MIME parser reads it as one message.
    """
    parsed = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not parsed.is_multipart():
        raise ProblemError(400, "a multipart/form-data body without parts")
    for part in parsed.iter_parts():
        filename = part.get_filename()
        if filename:
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                break
            # Some clients percent-encode the filename (aiohttp does), and old browsers send
            # the whole Windows path: keep only the last segment, decoded.
            name = unquote(filename).replace("\\", "/").rsplit("/", 1)[-1]
            return name[:NAME_MAX], payload
    raise ProblemError(400, "the multipart/form-data body has no file part (a part with a filename)")


async def upload(call: Call) -> Any:
    q: UploadQuery = call.query
    content_type = call.request.headers.get("Content-Type", "")
    if content_type.lower().startswith("multipart/form-data"):
        name, data = multipart_file(content_type, call.raw)
        name = q.bestandsnaam or name
    elif q.bestandsnaam is None:
        raise ProblemError(400, "bestandsnaam is required when the body is the file itself")
    else:
        name, data = q.bestandsnaam, call.raw
    return json_response(OPS["aanleveringen.upload"], await run(call, _upload, name, data))


async def list_batches(call: Call) -> Any:
    q: BatchListQuery = call.query
    query = BatchQuery(since=q.since, until=q.until, status=q.status, limit=q.limit + 1, offset=q.offset)
    found = await run(call, aanleveren.list_batches, query)
    page = MorePage[Verslag](
        items=list(found[: q.limit]), total=-1, limit=q.limit, offset=q.offset, more=len(found) > q.limit
    )
    return json_response(OPS["aanleveringen.list"], page)


async def show_batch(call: Call) -> Any:
    found = await run(call, aanleveren.verslag, int(call.path("batch")))
    return json_response(OPS["aanleveringen.show"], found)


CSV_COLUMNS = (
    "bestand",
    "uitkomst",
    "foutomschrijving",
    "fout detail",
    "berichttype",
    "gemeentecode",
    "referentienummer",
    "bericht",
)


def verslag_csv(files: tuple[FileResult, ...]) -> str:
    """One line per file, semicolon-separated as `aanleveren show --csv` writes it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for f in files:
        row = (
            f.bestand,
            f.uitkomst,
            f.foutomschrijving,
            f.fout_detail,
            f.berichttype,
            f.gemeentecode,
            f.referentienummer,
            f.message_pk,
        )
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


async def batch_csv(call: Call) -> Any:
    batch = int(call.path("batch"))
    found = await run(call, aanleveren.verslag, batch)
    return web.Response(
        text=verslag_csv(found.bestanden),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="verwerkingsverslag-{batch}.csv"'},
    )


# --- berichtenlog ------------------------------------------------------------------------------------


async def query_log(call: Call) -> Any:
    q: LogQueryModel = call.query
    log_filter = LogFilter(
        since=q.since,
        until=q.until,
        berichttype=q.berichttype,
        gemeentecode=q.gemeentecode,
        direction=q.direction,
        status=q.status,
        referentienummer=q.referentienummer,
        batch=q.batch,
        include_signals=q.include_signals,
        kind=q.kind,
        cpa_id=q.cpa_id,
        limit=q.limit,
        offset=q.offset,
    )
    found = await run(call, berichtenlog.berichtenlog, log_filter)
    page = LogPageModel(
        items=list(found.rows),
        total=-1,
        limit=q.limit,
        offset=q.offset,
        more=found.more,
        since=found.since,
        until=found.until,
    )
    return json_response(OPS["berichtenlog.list"], page)


# --- ophalen ---------------------------------------------------------------------------------------------


async def list_ophalen(call: Call) -> Any:
    q: OphaalQueryModel = call.query
    query = OphaalQuery(
        gemeentecode=q.gemeentecode, berichttype=q.berichttype, unread_only=q.unread, limit=q.limit
    )
    found = await run(call, ophalen.list_items, query)
    page = MorePage[OphaalItem](items=list(found), total=len(found), limit=q.limit, offset=0, more=False)
    return json_response(OPS["ophalen.list"], page)


def _zip(download: ophalen.Download) -> web.Response:
    return web.Response(
        body=download.data,
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{download.filename}"'},
    )


async def download_one(call: Call) -> Any:
    return _zip(await run(call, ophalen.download, [int(call.path("pk"))]))


async def download_selection(call: Call) -> Any:
    body: Selection = call.body
    return _zip(await run(call, ophalen.download, body.ids))


async def unmark(call: Call) -> Any:
    body: Selection = call.body
    return json_response(OPS["ophalen.unmark"], Changed(ids=list(await run(call, ophalen.unmark, body.ids))))


async def delete_selection(call: Call) -> Any:
    body: Selection = call.body
    return json_response(OPS["ophalen.delete"], Changed(ids=list(await run(call, ophalen.delete, body.ids))))


# --- exchanges and routes --------------------------------------------------------------------------------


async def list_exchanges(call: Call) -> Any:
    found, warnings = await run(call, exchanges.list_exchanges)
    n = len(found)
    page = ExchangeList(items=list(found), total=n, limit=n or 1, offset=0, warnings=list(warnings))
    return json_response(OPS["exchanges.list"], page)


async def show_exchange(call: Call) -> Any:
    return json_response(OPS["exchanges.show"], await run(call, exchanges.show_exchange, call.path("key")))


async def set_exchange(call: Call) -> Any:
    body: ExchangeChange = call.body
    changes = body.model_dump(exclude_none=True)
    found = await run(call, exchanges.set_exchange, call.path("key"), changes)
    return json_response(OPS["exchanges.set"], found)


async def reset_exchange(call: Call) -> Any:
    found = await run(call, exchanges.reset_exchange, call.path("key"))
    return json_response(OPS["exchanges.reset"], found)


def _set_route(ctx: ServiceContext, change: RouteChange) -> RouteChanged:
    try:
        return routeren.set_route(ctx, change)
    except ServiceError:
        raise
    except (GgkEbmsError, ValueError) as exc:
        # The changed table did not pass the same checks as an import (ConfigError).
        raise ServiceError(str(exc)) from None


async def set_route(call: Call) -> Any:
    body: RouteChangeModel = call.body
    change = RouteChange(
        name=call.path("name"),
        gemeentecode=body.gemeentecode,
        berichttype=body.berichttype,
        target=TargetSpec(**body.target.model_dump()) if body.target is not None else None,
        status=body.status,
        channel=body.channel,
        stuf_version=body.stuf_version,
        payload_version=body.payload_version,
        allowed_senders=tuple(body.allowed_senders) if body.allowed_senders is not None else None,
    )
    return json_response(OPS["routes.set"], await run(call, _set_route, change))


async def enable_route(call: Call) -> Any:
    return json_response(OPS["routes.enable"], await run(call, routeren.enable_route, call.path("name")))


async def disable_route(call: Call) -> Any:
    return json_response(OPS["routes.disable"], await run(call, routeren.disable_route, call.path("name")))


# --- Ketendata --------------------------------------------------------------------------------------------


class KetendataQuery(BaseModel):
    unread: bool = False


def _ketendata(ctx: ServiceContext) -> ketendata.KetendataContext:
    return ketendata.KetendataContext(ctx.settings, ctx.database, ctx.clock, actor=ctx.actor)


def _ketendata_files(ctx: ServiceContext, unread: bool) -> list[FileInfo]:
    return ketendata.list_files(_ketendata(ctx), include_fetched=not unread)


def _ketendata_exports(ctx: ServiceContext) -> list[ExportInfo]:
    return ketendata.list_exports(_ketendata(ctx))


def _ketendata_zip(ctx: ServiceContext, ids: list[int]) -> bytes:
    try:
        files = ketendata.fetch_files(_ketendata(ctx), list(dict.fromkeys(ids)))
    except StoreError as exc:
        if isinstance(exc, StoreUnavailableError):
            raise
        raise NotFoundError(str(exc)) from None
    # The same entry names as `ggk-ebms ketendata fetch`: <export>/<file>.
    return zip_files(
        ((f"ketendata-{f.export_pk}/{f.filename}", f.data or b"") for f in files), ctx.clock.now()
    )


async def list_ketendata_files(call: Call) -> Any:
    q: KetendataQuery = call.query
    found = await run(call, _ketendata_files, q.unread)
    items = [dataclasses.replace(f, data=None) for f in found]
    n = len(items)
    return json_response(
        OPS["ketendata.files"], MorePage[FileInfo](items=items, total=n, limit=n or 1, offset=0, more=False)
    )


async def list_ketendata_exports(call: Call) -> Any:
    found = await run(call, _ketendata_exports)
    n = len(found)
    return json_response(
        OPS["ketendata.exports"],
        MorePage[ExportInfo](items=found, total=n, limit=n or 1, offset=0, more=False),
    )


async def download_ketendata(call: Call) -> Any:
    body: Selection = call.body
    data = await run(call, _ketendata_zip, body.ids)
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="ketendata.zip"'},
    )


# --- audit trail -------------------------------------------------------------------------------------------


async def list_audit(call: Call) -> Any:
    q: AuditQueryModel = call.query
    query = AuditQuery(
        since=q.since, until=q.until, actor=q.actor, action=q.action, limit=q.limit, offset=q.offset
    )
    found = await run(call, audit.list_audit, query)
    page = MorePage[AuditEvent](
        items=list(found.events), total=-1, limit=q.limit, offset=q.offset, more=found.more
    )
    return json_response(OPS["audit.list"], page)


def _op(
    key: str, method: str, path: str, scope: str, handler: Any, summary: str, tag: str, **kw: Any
) -> Operation:
    return Operation(method, PREFIX + path, scope, handler, summary, key, tag, **kw)


_BATCH = {"path_types": {"batch": int}, "errors": (404,)}
_IDS = {"body": Selection, "errors": (404, 422)}
OPERATIONS: list[Operation] = [
    _op(
        "aanleveringen.upload",
        "POST",
        "/aanleveringen",
        "send",
        upload,
        "Aanleveren: a ZIP or one XML as the body (or multipart); answers the verwerkingsverslag",
        "aanleveren",
        query=UploadQuery,
        raw_body="application/octet-stream",
        max_body=MAX_UPLOAD_BYTES,
        response=Verslag,
        status=201,
        errors=(422,),
    ),
    _op(
        "aanleveringen.list",
        "GET",
        "/aanleveringen",
        "read",
        list_batches,
        "Aanleveringen, newest first (no per-file lines)",
        "aanleveren",
        query=BatchListQuery,
        response=MorePage[Verslag],
        errors=(422,),
    ),
    _op(
        "aanleveringen.show",
        "GET",
        "/aanleveringen/{batch}",
        "read",
        show_batch,
        "The verwerkingsverslag of one aanlevering",
        "aanleveren",
        response=Verslag,
        **_BATCH,
    ),
    _op(
        "aanleveringen.csv",
        "GET",
        "/aanleveringen/{batch}/verslag.csv",
        "read",
        batch_csv,
        "The verwerkingsverslag as CSV, one line per file",
        "aanleveren",
        response=str,
        response_media="text/csv",
        **_BATCH,
    ),
    _op(
        "berichtenlog.list",
        "GET",
        "/berichtenlog",
        "read",
        query_log,
        "Berichtenlog: messages sent and received, regular and refused, both lifecycle layers",
        "berichtenlog",
        query=LogQueryModel,
        response=LogPageModel,
        errors=(422,),
    ),
    _op(
        "ophalen.list",
        "GET",
        "/ophalen",
        "read",
        list_ophalen,
        "Ophalen: the mailbox with the portal's columns",
        "ophalen",
        query=OphaalQueryModel,
        response=MorePage[OphaalItem],
    ),
    _op(
        "ophalen.download",
        "POST",
        "/ophalen/download",
        "operate",
        download_selection,
        "Download a selection as one ZIP; marks each gelezen",
        "ophalen",
        response=bytes,
        response_media="application/zip",
        **_IDS,
    ),
    _op(
        "ophalen.download_one",
        "POST",
        "/ophalen/{pk}/download",
        "operate",
        download_one,
        "Download one message as a ZIP; marks it gelezen",
        "ophalen",
        response=bytes,
        response_media="application/zip",
        path_types={"pk": int},
        errors=(404, 422),
    ),
    _op(
        "ophalen.unmark",
        "POST",
        "/ophalen/unmark",
        "operate",
        unmark,
        "Clear the gelezen mark of a selection",
        "ophalen",
        response=Changed,
        **_IDS,
    ),
    _op(
        "ophalen.delete",
        "POST",
        "/ophalen/delete",
        "operate",
        delete_selection,
        "Remove a selection from Ophalen (stays in the berichtenlog)",
        "ophalen",
        response=Changed,
        **_IDS,
    ),
    _op(
        "exchanges.list",
        "GET",
        "/exchanges",
        "read",
        list_exchanges,
        "Berichtuitwisselingen with their settings",
        "exchanges",
        response=ExchangeList,
    ),
    _op(
        "exchanges.show",
        "GET",
        "/exchanges/{key}",
        "read",
        show_exchange,
        "One exchange, by either berichttype",
        "exchanges",
        response=ExchangeView,
        errors=(404,),
    ),
    _op(
        "exchanges.set",
        "PATCH",
        "/exchanges/{key}",
        "operate",
        set_exchange,
        "Change settings of one exchange (only those given)",
        "exchanges",
        body=ExchangeChange,
        response=ExchangeView,
        errors=(404, 422),
    ),
    _op(
        "exchanges.reset",
        "DELETE",
        "/exchanges/{key}/changes",
        "operate",
        reset_exchange,
        "Forget every change of one exchange",
        "exchanges",
        response=ExchangeView,
        errors=(404, 422),
    ),
    _op(
        "routes.set",
        "PUT",
        "/routes/{name}",
        "operate",
        set_route,
        "Add one route or change the fields given",
        "routes",
        body=RouteChangeModel,
        response=RouteChanged,
        errors=(422,),
    ),
    _op(
        "routes.enable",
        "POST",
        "/routes/{name}/enable",
        "operate",
        enable_route,
        "Set one route actief",
        "routes",
        response=RouteChanged,
        errors=(404, 422),
    ),
    _op(
        "routes.disable",
        "POST",
        "/routes/{name}/disable",
        "operate",
        disable_route,
        "Set one route inactief",
        "routes",
        response=RouteChanged,
        errors=(404, 422),
    ),
    _op(
        "ketendata.files",
        "GET",
        "/ketendata/files",
        "read",
        list_ketendata_files,
        "Ketendata files (no contents); unread: not downloaded yet",
        "ketendata",
        query=KetendataQuery,
        response=MorePage[FileInfo],
    ),
    _op(
        "ketendata.exports",
        "GET",
        "/ketendata/exports",
        "read",
        list_ketendata_exports,
        "Ketendata exports",
        "ketendata",
        response=MorePage[ExportInfo],
    ),
    _op(
        "ketendata.download",
        "POST",
        "/ketendata/download",
        "operate",
        download_ketendata,
        "Download Ketendata files as one ZIP; marks each gelezen",
        "ketendata",
        response=bytes,
        response_media="application/zip",
        **_IDS,
    ),
    _op(
        "audit.list",
        "GET",
        "/audit",
        "admin",
        list_audit,
        "The audit trail, newest first",
        "audit",
        query=AuditQueryModel,
        response=MorePage[AuditEvent],
    ),
]
OPS = {op.operation_id: op for op in OPERATIONS}
