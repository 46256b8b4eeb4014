"""/api/v1: our own REST API over what the endpoint has (docs/api.md, "/api/v1").

Listings share one shape: ``{"items": [...], "total": n, "limit": l, "offset": o}`` with
``limit`` (1-500) and ``offset`` query parameters. The routes over the services layer
(aanleveren, berichtenlog, ophalen, exchanges, routes, Ketendata, audit trail) are in
``api.v1_services``.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from ggk_ebms.api import actions, operations
from ggk_ebms.api.audit import record_audit
from ggk_ebms.api.operations import Call, Operation, json_response
from ggk_ebms.api.problem import ProblemError
from ggk_ebms.api.states import EVENT_STATES, EventType, event_type
from ggk_ebms.config import shown
from ggk_ebms.cpa.summary import describe_agreement
from ggk_ebms.errors import CpaError, CpaExistsError, GgkEbmsError
from ggk_ebms.pipeline import outbound
from ggk_ebms.store.api_marks import MarkStore, event_condition
from ggk_ebms.store.cpas import CpaRepository, StoredCpa
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.koppeltabel import KoppelStore
from ggk_ebms.store.mailbox import Mailbox, MailboxItem
from ggk_ebms.store.messages import MessageStore, StoredMessage
from ggk_ebms.store.rights import mailbox_gemeentecode, message_gemeentecode, visible_messages
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.store.tables import KINDS, STATUSES
from ggk_ebms.store.zorgaanbieders import ZorgaanbiederStore

PREFIX = "/api/v1"
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class Paging(BaseModel):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class MessageQuery(Paging):
    direction: Literal["in", "out"] | None = None
    status: Literal[STATUSES] | None = None  # type: ignore[valid-type]
    kind: Literal[KINDS] | None = None  # type: ignore[valid-type]
    cpa_id: str | None = Field(default=None, max_length=255)


class MessageSummary(BaseModel):
    pk: int
    direction: str
    message_id: str
    cpa_id: str
    conversation_id: str
    ref_to_message_id: str | None
    from_party_id: str
    to_party_id: str
    service: str
    action: str
    kind: str
    status: str
    status_reason: str | None
    error_code: str | None
    timestamp: datetime
    created_at: datetime
    updated_at: datetime
    # The zorgaanbieder (payload header AGB code) and its name from the register
    # (docs/zorgaanbieders.md); None when unknown.
    aanbieder: str | None = None
    aanbieder_naam: str | None = None


class PartInfo(BaseModel):
    content_id: str
    content_type: str
    size: int
    sha256: str


class AttemptInfo(BaseModel):
    started_at: datetime
    finished_at: datetime
    outcome: str
    http_status: int | None
    error: str | None


class KoppelInfo(BaseModel):
    """One koppeltabel relation seen from the message shown (docs/koppeltabel.md)."""

    pk: int
    message_id: str
    direction: str
    berichttype: str | None
    relation: str  # retour, antwoord, start, stop, declaratie, toewijzing, fout
    via: str  # the element that links them (never its value)
    role: str  # "earlier": the other message came first (the heen, the toewijzing)


class MessageDetail(MessageSummary):
    parts: list[PartInfo]
    attempts: list[AttemptInfo]
    related: list[MessageSummary]
    koppeltabel: list[KoppelInfo] = []


class CpaSummary(BaseModel):
    cpa_id: str
    status: str
    start: datetime
    end: datetime
    party_ids: list[str]
    profiles: list[str]
    sha256: str
    imported_at: datetime
    updated_at: datetime


class CpaDetail(CpaSummary):
    description: list[str]


class FindingModel(BaseModel):
    severity: str
    rule: str
    location: str
    message: str
    advice: str


class ValidationResult(BaseModel):
    ok: bool
    cpa_id: str | None
    findings: list[FindingModel]


class OverwriteQuery(BaseModel):
    overwrite: bool = False


class PingOutcome(BaseModel):
    ok: bool
    ping_message_id: str
    endpoint: str
    layer: str
    summary: str
    advice: str
    http_status: int | None
    round_trip_ms: int | None


class RouteModel(BaseModel):
    name: str
    gemeentecode: str
    berichttype: str
    status: str
    channel: str
    target: str
    allowed_senders: list[str]


class RouteTestQuery(BaseModel):
    gemeentecode: str = Field(min_length=1, max_length=200)
    berichttype: str = Field(min_length=1, max_length=32)
    sender: str | None = Field(default=None, max_length=255)


class RouteDecision(BaseModel):
    routed: bool
    route: str | None
    explanation: str
    code: str | None
    sender_allowed: bool | None
    sender_reason: str | None


class MailboxQuery(BaseModel):
    gemeentecode: str | None = Field(default=None, max_length=200)
    berichttype: str | None = Field(default=None, max_length=32)
    unread: bool = False
    limit: int = Field(default=100, ge=1, le=500)


class MailboxEntry(BaseModel):
    pk: int
    route_name: str
    gemeentecode: str
    berichttype: str
    referentienummer: str
    zender: str
    filename: str
    size: int
    sha256: str
    created_at: datetime
    fetched_at: datetime | None


class MailboxPayload(MailboxEntry):
    payload: str = Field(description="base64")


class EventQuery(Paging):
    type: EventType | None = None
    unprocessed: bool = False
    cpa_id: str | None = Field(default=None, max_length=255)


class StufOutcome(BaseModel):
    """StUF-GGk stuurgegevens of the message: berichtcode Fo01 is a refusal (fout_code says
    why), a Di01 with a retour berichttype is the answer to an earlier heenbericht."""

    berichtcode: str
    berichttype: str | None
    fout_code: str | None
    cross_refnummer: str | None


class EventModel(BaseModel):
    message_id: str
    type: EventType
    direction: str
    status: str
    cpa_id: str
    action: str
    at: datetime
    processed: bool
    stuf: StufOutcome | None


class SettingModel(BaseModel):
    name: str
    value: str
    help: str


def _summary(m: StoredMessage) -> MessageSummary:
    return MessageSummary.model_validate(m, from_attributes=True)


def _named(database: Database, summaries: list[MessageSummary]) -> list[MessageSummary]:
    """The summaries with their aanbieder and its name from the register (docs/zorgaanbieders.md)."""
    agb = KoppelStore(database).aanbieders([m.pk for m in summaries])
    names = ZorgaanbiederStore(database).names(set(agb.values()))
    return [
        m.model_copy(update={"aanbieder": agb.get(m.pk), "aanbieder_naam": names.get(agb.get(m.pk, ""))})
        for m in summaries
    ]


def _cpa(c: StoredCpa) -> CpaSummary:
    return CpaSummary(
        cpa_id=c.cpa_id,
        status=c.status,
        start=c.start,
        end=c.end,
        party_ids=list(c.party_ids),
        profiles=list(c.profiles),
        sha256=c.sha256,
        imported_at=c.imported_at,
        updated_at=c.updated_at,
    )


def _mailbox(item: MailboxItem) -> dict[str, Any]:
    return {name: getattr(item, name) for name in MailboxEntry.model_fields}


_thread = operations.in_thread


# --- messages ----------------------------------------------------------------------------------


async def list_messages(call: Call) -> Any:
    q: MessageQuery = call.query
    store = MessageStore(call.ctx.database)

    codes = call.token.gemeentecodes if call.token is not None else None

    def page() -> Page[MessageSummary]:
        if codes is not None:
            # Rights per gemeentecode (docs/koppeltabel.md): only this token's gemeenten.
            pks, total = visible_messages(
                call.ctx.database,
                codes,
                direction=q.direction,
                status=q.status,
                kind=q.kind,
                cpa_id=q.cpa_id,
                limit=q.limit,
                offset=q.offset,
            )
            found = [store.get(pk) for pk in pks]
        else:
            found = store.list(q.direction, q.status, q.kind, q.cpa_id, limit=q.limit, offset=q.offset)
            total = store.count(q.direction, q.status, q.kind, q.cpa_id)
        return Page[MessageSummary](
            items=_named(call.ctx.database, [_summary(m) for m in found]),
            total=total,
            limit=q.limit,
            offset=q.offset,
        )

    return json_response(OPS["messages.list"], await _thread(page))


async def show_message(call: Call) -> Any:
    pk = int(call.path("pk"))
    store = MessageStore(call.ctx.database)

    def detail() -> MessageDetail:
        try:
            message = store.get(pk)
        except GgkEbmsError:
            raise ProblemError(404, "no such message") from None
        if call.token is not None and not call.token.may_act_for(message_gemeentecode(call.ctx.database, pk)):
            raise ProblemError(404, "no such message")  # another gemeente's: not even its existence
        parts = store.parts(pk)
        attempts = JobQueue(call.ctx.database).attempts(pk)
        related = store.list_related(message.message_id)
        return MessageDetail(
            **_named(call.ctx.database, [_summary(message)])[0].model_dump(),
            parts=[
                PartInfo(content_id=p.content_id, content_type=p.content_type, size=p.size, sha256=p.sha256)
                for p in parts
            ],
            attempts=[AttemptInfo.model_validate(a, from_attributes=True) for a in attempts],
            related=[_summary(r) for r in related],
            koppeltabel=[
                KoppelInfo(
                    pk=k.pk,
                    message_id=k.message_id,
                    direction=k.direction,
                    berichttype=k.berichttype or k.berichtcode,
                    relation=k.relation.value,
                    via=k.via.value,
                    role=k.role,
                )
                for k in KoppelStore(call.ctx.database).related(pk)
                if call.token is None or call.token.may_act_for(message_gemeentecode(call.ctx.database, k.pk))
            ],
        )

    return json_response(OPS["messages.show"], await _thread(detail))


# --- CPAs ----------------------------------------------------------------------------------------------


async def list_cpas(call: Call) -> Any:
    found = await _thread(CpaRepository(call.ctx.database).list)
    items = [_cpa(c) for c in found]
    return json_response(
        OPS["cpas.list"], Page[CpaSummary](items=items, total=len(items), limit=len(items) or 1, offset=0)
    )


async def show_cpa(call: Call) -> Any:
    cpa_id = call.path("cpa_id")

    def detail() -> CpaDetail:
        stored = CpaRepository(call.ctx.database).find(cpa_id)
        if stored is None:
            raise ProblemError(404, "no such CPA")
        agreement = outbound.load_agreement(
            call.ctx.database,
            cpa_id,
            max_cpa_bytes=call.ctx.settings.max_cpa_bytes,
            agreements=call.ctx.agreements,
        )
        return CpaDetail(
            **_cpa(stored).model_dump(), description=describe_agreement(agreement, now=call.ctx.clock.now())
        )

    return json_response(OPS["cpas.show"], await _thread(detail))


async def validate_cpa(call: Call) -> Any:
    validation = await _thread(actions.validate, call.ctx, call.raw)
    return json_response(
        OPS["cpas.validate"],
        ValidationResult(
            ok=validation.ok,
            cpa_id=validation.agreement.cpa_id if validation.agreement else None,
            findings=[FindingModel.model_validate(f, from_attributes=True) for f in validation.findings],
        ),
    )


async def import_cpa(call: Call) -> Any:
    overwrite = call.query.overwrite
    try:
        agreement = await _thread(actions.insert_cpa, call.ctx, call.raw, overwrite=overwrite)
    except actions.InvalidCpa as exc:
        raise ProblemError(422, str(exc)) from None
    except CpaExistsError as exc:
        raise ProblemError(409, str(exc)) from None
    record_audit(call, "cpa.insert", agreement.cpa_id, detail=f"overwrite={overwrite}")
    stored = await _thread(CpaRepository(call.ctx.database).get, agreement.cpa_id)
    return json_response(OPS["cpas.import"], _cpa(stored))


async def delete_cpa(call: Call) -> Any:
    return await operations.delete_cpa(call, call.path("cpa_id"))


async def ping_cpa(call: Call) -> Any:
    cpa_id = call.path("cpa_id")
    try:
        result = await actions.ping_cpa(call.ctx, cpa_id)
    except CpaError as exc:
        raise ProblemError(404 if "no CPA" in str(exc) else 409, str(exc)) from None
    record_audit(call, "cpa.ping", cpa_id, outcome="ok" if result.ok else "failed")
    d = result.diagnosis
    return json_response(
        OPS["cpas.ping"],
        PingOutcome(
            ok=result.ok,
            ping_message_id=result.ping_message_id,
            endpoint=result.target.endpoint,
            layer=str(d.layer.value if hasattr(d.layer, "value") else d.layer),
            summary=d.summary,
            advice=d.advice,
            http_status=d.http_status,
            round_trip_ms=d.round_trip_ms,
        ),
    )


# --- routes and mailbox --------------------------------------------------------------------------


def _target_kind(target: object) -> str:
    return type(target).__name__.removesuffix("Target").lower()


def _table(call: Call) -> Any:
    current = RouteStore(call.ctx.database).current()
    if current is None:
        raise ProblemError(404, "no routing table is imported")
    return current.table()


async def list_routes(call: Call) -> Any:
    table = await _thread(_table, call)
    items = [
        RouteModel(
            name=r.name,
            gemeentecode=r.gemeentecode,
            berichttype=r.berichttype,
            status=r.status.value,
            channel=r.channel.value,
            target=_target_kind(r.target),
            allowed_senders=list(r.allowed_senders),
        )
        for r in table.routes
    ]
    return json_response(
        OPS["routes.list"], Page[RouteModel](items=items, total=len(items), limit=len(items) or 1, offset=0)
    )


async def test_route(call: Call) -> Any:
    q: RouteTestQuery = call.query
    table = await _thread(_table, call)
    match = table.match(q.gemeentecode, q.berichttype)
    allowed = reason = None
    if q.sender is not None and match.route is not None:
        verdict = table.authorize(q.sender, q.gemeentecode, match.route)
        allowed, reason = verdict.allowed, verdict.reason
    return json_response(
        OPS["routes.test"],
        RouteDecision(
            routed=match.route is not None,
            route=match.route.name if match.route else None,
            explanation=match.explain(),
            code=match.code,
            sender_allowed=allowed,
            sender_reason=reason,
        ),
    )


async def list_mailbox(call: Call) -> Any:
    q: MailboxQuery = call.query
    found = await _thread(
        Mailbox(call.ctx.database).list,
        gemeentecode=q.gemeentecode,
        berichttype=q.berichttype,
        include_fetched=not q.unread,
        limit=q.limit,
    )
    if call.token is not None:
        found = [i for i in found if call.token.may_act_for(i.gemeentecode)]
    items = [MailboxEntry(**_mailbox(i)) for i in found]
    return json_response(
        OPS["mailbox.list"], Page[MailboxEntry](items=items, total=len(items), limit=q.limit, offset=0)
    )


async def fetch_mailbox(call: Call) -> Any:
    pk = int(call.path("pk"))
    if call.token is not None and not call.token.may_act_for(
        await _thread(mailbox_gemeentecode, call.ctx.database, pk)
    ):
        raise ProblemError(404, "no such mailbox item")  # checked before fetch marks it gelezen
    try:
        item = await _thread(Mailbox(call.ctx.database, call.ctx.clock).fetch, pk)
    except GgkEbmsError:
        raise ProblemError(404, "no such mailbox item") from None
    record_audit(call, "mailbox.fetch", str(pk))
    return json_response(
        OPS["mailbox.fetch"],
        MailboxPayload(**_mailbox(item), payload=base64.b64encode(item.payload or b"").decode("ascii")),
    )


# --- events and settings -------------------------------------------------------------------------


async def list_events(call: Call) -> Any:
    q: EventQuery = call.query
    kinds = [q.type] if q.type else list(EventType)
    condition = event_condition([EVENT_STATES[k] for k in kinds])
    filters = {"cpaId": q.cpa_id} if q.cpa_id else {}
    rows = await _thread(
        MarkStore(call.ctx.database).events,
        condition,
        filters,
        unprocessed_only=q.unprocessed,
        limit=q.limit,
        offset=q.offset,
    )
    items = []
    for row in rows:
        kind = event_type(row.direction, row.status)
        if kind is not None:
            items.append(
                EventModel(
                    message_id=row.message_id,
                    type=kind,
                    direction=row.direction,
                    status=row.status,
                    cpa_id=row.cpa_id,
                    action=row.action,
                    at=row.updated_at,
                    processed=bool(row.event_marked),
                    stuf=None
                    if row.berichtcode is None
                    else StufOutcome(
                        berichtcode=row.berichtcode,
                        berichttype=row.berichttype,
                        fout_code=row.fout_code,
                        cross_refnummer=row.cross_refnummer,
                    ),
                )
            )
    # The total of an event feed is not counted (it moves while a client pages); -1 says so.
    return json_response(
        OPS["events.list"], Page[EventModel](items=items, total=-1, limit=q.limit, offset=q.offset)
    )


async def show_settings(call: Call) -> Any:
    rows = [SettingModel(name=n, value=v, help=h) for n, v, h in shown(call.ctx.settings)]
    return json_response(OPS["settings.show"], rows)


def _op(
    key: str, method: str, path: str, scope: str, handler: Any, summary: str, tag: str, **kw: Any
) -> Operation:
    return Operation(method, PREFIX + path, scope, handler, summary, key, tag, **kw)


_XML = {"raw_body": "application/xml"}
OPERATIONS: list[Operation] = [
    _op(
        "messages.list",
        "GET",
        "/messages",
        "read",
        list_messages,
        "Messages, newest first",
        "messages",
        query=MessageQuery,
        response=Page[MessageSummary],
    ),
    _op(
        "messages.show",
        "GET",
        "/messages/{pk}",
        "read",
        show_message,
        "One message with parts and attempts",
        "messages",
        response=MessageDetail,
        path_types={"pk": int},
        errors=(404,),
    ),
    _op("cpas.list", "GET", "/cpas", "read", list_cpas, "Stored CPAs", "cpas", response=Page[CpaSummary]),
    _op(
        "cpas.validate",
        "POST",
        "/cpas/validate",
        "read",
        validate_cpa,
        "Validate a CPA (nothing stored)",
        "cpas",
        response=ValidationResult,
        **_XML,
    ),
    _op(
        "cpas.import",
        "POST",
        "/cpas",
        "admin",
        import_cpa,
        "Import a CPA",
        "cpas",
        query=OverwriteQuery,
        response=CpaSummary,
        status=201,
        errors=(409, 422),
        **_XML,
    ),
    _op(
        "cpas.show",
        "GET",
        "/cpas/{cpa_id}",
        "read",
        show_cpa,
        "One CPA",
        "cpas",
        response=CpaDetail,
        errors=(404,),
    ),
    _op(
        "cpas.delete",
        "DELETE",
        "/cpas/{cpa_id}",
        "admin",
        delete_cpa,
        "Delete a CPA",
        "cpas",
        status=204,
        errors=(404,),
    ),
    _op(
        "cpas.ping",
        "POST",
        "/cpas/{cpa_id}/ping",
        "operate",
        ping_cpa,
        "Ping the other party of a CPA",
        "cpas",
        response=PingOutcome,
        errors=(404, 409),
    ),
    _op(
        "routes.list",
        "GET",
        "/routes",
        "read",
        list_routes,
        "The routing table in force",
        "routes",
        response=Page[RouteModel],
        errors=(404,),
    ),
    _op(
        "routes.test",
        "GET",
        "/routes/test",
        "read",
        test_route,
        "Which route would take a message",
        "routes",
        query=RouteTestQuery,
        response=RouteDecision,
        errors=(404,),
    ),
    _op(
        "mailbox.list",
        "GET",
        "/mailbox",
        "read",
        list_mailbox,
        "Mailbox items (no payloads)",
        "mailbox",
        query=MailboxQuery,
        response=Page[MailboxEntry],
    ),
    _op(
        "mailbox.fetch",
        "POST",
        "/mailbox/{pk}/fetch",
        "send",
        fetch_mailbox,
        "Fetch an item; marks it gelezen",
        "mailbox",
        response=MailboxPayload,
        path_types={"pk": int},
        errors=(404,),
    ),
    _op(
        "events.list",
        "GET",
        "/events",
        "read",
        list_events,
        "Business outcomes of messages",
        "events",
        query=EventQuery,
        response=Page[EventModel],
    ),
    _op(
        "settings.show",
        "GET",
        "/settings",
        "operate",
        show_settings,
        "Settings (secrets masked)",
        "settings",
        response=list[SettingModel],
    ),
]
OPS = {op.operation_id: op for op in OPERATIONS}
