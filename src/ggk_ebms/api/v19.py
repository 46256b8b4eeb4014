"""/service/rest/v19: the REST API of eluinstra/ebms-core (v19), for applications written
against it (docs/api.md, "ebms-core REST v19").

Same paths, camelCase JSON field names, text/plain where ebms-core takes or gives plain text,
204 for operations without an answer, 400 for a bad request and 404 for an unknown CPA, message
or mapping. Differences are deliberate and documented: a token is required, errors are
problem+json, a CPA that exists without ``overwrite`` is 409.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ggk_ebms.api import actions, operations
from ggk_ebms.api.audit import record_audit
from ggk_ebms.api.operations import Call, Operation, json_response, no_content, text_response
from ggk_ebms.api.problem import ProblemError
from ggk_ebms.api.states import (
    EVENT_STATES,
    NOT_OFFERED_RECEIVED,
    EbmsCoreStatus,
    EventType,
    ebms_core_status,
    event_type,
)
from ggk_ebms.errors import CpaError, CpaExistsError, DuplicateMessageError, GgkEbmsError, StufError, XmlError
from ggk_ebms.store.api_marks import MarkStore, event_condition
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.mappings import MappingStore
from ggk_ebms.store.messages import MessageStore, StoredMessage
from ggk_ebms.store.rights import gemeentecodes_by_message_id, message_gemeentecode
from ggk_ebms.stuf.envelope import parse_envelope

PREFIX = "/service/rest/v19"
TAG = "ebms-core REST v19"
_MAX_LIST = 1000  # maxNr 0 means "all" in ebms-core; we cap a listing at this many


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Overwrite(_Camel):
    overwrite: bool = False


class UrlMappingModel(_Camel):
    source: str = Field(min_length=1, max_length=1024)
    destination: str = Field(min_length=1, max_length=1024)


class CertificateMappingModel(_Camel):
    source: str = Field(min_length=1, description="base64 DER X.509 certificate")
    destination: str = Field(min_length=1, description="base64 DER X.509 certificate")
    cpa_id: str | None = Field(default=None, max_length=255)


class CpaIdQuery(_Camel):
    cpa_id: str | None = Field(default=None, max_length=255)


class DataSourceModel(_Camel):
    name: str | None = None
    content_id: str | None = Field(default=None, max_length=255)
    content_type: str = Field(min_length=1, max_length=255)
    content: str = Field(description="base64")


class RequestProperties(_Camel):
    cpa_id: str = Field(min_length=1, max_length=255)
    from_party_id: str = Field(min_length=1, max_length=255)
    from_role: str | None = None
    to_party_id: str | None = None
    to_role: str | None = None
    service: str = Field(min_length=1, max_length=255)
    action: str = Field(min_length=1, max_length=255)
    conversation_id: str | None = Field(default=None, max_length=1024)
    message_id: str | None = Field(default=None, max_length=1024)
    ref_to_message_id: str | None = Field(default=None, max_length=1024)


class MessageRequestModel(_Camel):
    properties: RequestProperties
    data_sources: list[DataSourceModel] = Field(default_factory=list, max_length=100)


class PartyModel(_Camel):
    party_id: str
    role: str | None = None


class MessagePropertiesModel(_Camel):
    cpa_id: str
    from_party: PartyModel
    to_party: PartyModel
    service: str
    action: str
    timestamp: datetime
    conversation_id: str
    message_id: str
    ref_to_message_id: str | None = None
    message_status: EbmsCoreStatus


class MessageModel(_Camel):
    properties: MessagePropertiesModel
    data_sources: list[DataSourceModel]


class MessageStatusModel(_Camel):
    status: EbmsCoreStatus
    timestamp: datetime


class MessageEventModel(_Camel):
    message_id: str
    type: EventType


class MessageFilterQuery(_Camel):
    cpa_id: str | None = None
    from_party_id: str | None = None
    from_role: str | None = None
    to_party_id: str | None = None
    to_role: str | None = None
    service: str | None = None
    action: str | None = None
    conversation_id: str | None = None
    message_id: str | None = None
    ref_to_message_id: str | None = None
    max_nr: int = Field(default=0, ge=0)

    def filters(self) -> dict[str, str]:
        data = self.model_dump(by_alias=True, exclude={"max_nr"}, exclude_none=True)
        return {k: str(v) for k, v in data.items()}

    @property
    def limit(self) -> int:
        return min(self.max_nr or _MAX_LIST, _MAX_LIST)


class EventFilterQuery(MessageFilterQuery):
    event_types: list[EventType] = Field(default_factory=list)


class ProcessQuery(_Camel):
    process: bool = False


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ProblemError(400, f"{what} is not valid base64") from None


def _text(call: Call) -> str:
    try:
        return call.raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError(400, "the body is not UTF-8") from None


_thread = operations.in_thread


# --- cpas --------------------------------------------------------------------------------------------


async def validate_cpa(call: Call) -> Any:
    validation = await _thread(actions.validate, call.ctx, call.raw)
    if not validation.ok:
        raise ProblemError(400, str(actions.InvalidCpa(validation)))
    return no_content()


async def insert_cpa(call: Call) -> Any:
    overwrite = call.query.overwrite
    try:
        agreement = await _thread(actions.insert_cpa, call.ctx, call.raw, overwrite=overwrite)
    except actions.InvalidCpa as exc:
        raise ProblemError(400, str(exc)) from None
    except CpaExistsError as exc:
        raise ProblemError(409, str(exc)) from None
    record_audit(call, "cpa.insert", agreement.cpa_id, detail=f"overwrite={overwrite}")
    return text_response(agreement.cpa_id)


async def list_cpas(call: Call) -> Any:
    stored = await _thread(CpaRepository(call.ctx.database).list)
    return json_response(OPS["cpas.list"], [c.cpa_id for c in stored])


async def get_cpa(call: Call) -> Any:
    found = await _thread(CpaRepository(call.ctx.database).find, call.path("cpaId"))
    if found is None:
        raise ProblemError(404, "no such CPA")
    return web.Response(body=found.raw, content_type="text/xml", charset="utf-8")


async def delete_cpa(call: Call) -> Any:
    return await operations.delete_cpa(call, call.path("cpaId"))


async def clear_cpa_cache(call: Call) -> Any:
    call.ctx.agreements.invalidate()
    return no_content()


# --- urlMappings ----------------------------------------------------------------------------------


async def put_url_mapping(call: Call) -> Any:
    body: UrlMappingModel = call.body
    try:
        await _thread(MappingStore(call.ctx.database, call.ctx.clock).put_url, body.source, body.destination)
    except ValueError as exc:
        raise ProblemError(400, str(exc)) from None
    record_audit(call, "urlmapping.set", body.source, detail=body.destination)
    return no_content()


async def list_url_mappings(call: Call) -> Any:
    found = await _thread(MappingStore(call.ctx.database).urls)
    return json_response(
        OPS["urlMappings.list"], [UrlMappingModel(source=m.source, destination=m.destination) for m in found]
    )


async def delete_url_mapping(call: Call) -> Any:
    # The source is a whole URL used unescaped as the rest of the path (ebms-core does so).
    source = call.request.path[len(f"{PREFIX}/urlMappings/") :]
    if not await _thread(MappingStore(call.ctx.database).delete_url, source):
        raise ProblemError(404, "no such URL mapping")
    record_audit(call, "urlmapping.delete", source)
    return no_content()


# --- certificateMappings --------------------------------------------------------------------------


async def put_certificate_mapping(call: Call) -> Any:
    body: CertificateMappingModel = call.body
    source, destination = _b64(body.source, "source"), _b64(body.destination, "destination")
    for what, der in (("source", source), ("destination", destination)):
        _check_certificate(der, what)
    await _thread(
        MappingStore(call.ctx.database, call.ctx.clock).put_certificate,
        source,
        destination,
        body.cpa_id or "",
    )
    record_audit(call, "certificatemapping.set", body.cpa_id or "*")
    return no_content()


def _check_certificate(der: bytes, what: str) -> None:
    from cryptography import x509

    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise ProblemError(400, f"{what} is not a DER X.509 certificate") from None


async def list_certificate_mappings(call: Call) -> Any:
    found = await _thread(MappingStore(call.ctx.database).certificates)
    return json_response(
        OPS["certificateMappings.list"],
        [
            CertificateMappingModel(
                source=base64.b64encode(m.source).decode(),
                destination=base64.b64encode(m.destination).decode(),
                cpa_id=m.cpa_id or None,
            )
            for m in found
        ],
    )


async def delete_certificate_mapping(call: Call) -> Any:
    source = _b64(_text(call), "the body")
    cpa_id = call.query.cpa_id or ""
    if not await _thread(MappingStore(call.ctx.database).delete_certificate, source, cpa_id):
        raise ProblemError(404, "no such certificate mapping")
    record_audit(call, "certificatemapping.delete", cpa_id or "*")
    return no_content()


async def clear_mapping_cache(call: Call) -> Any:
    return no_content()  # mappings are read from the database on every send: nothing is cached


# --- ebms -----------------------------------------------------------------------------------------------


async def ping(call: Call) -> Any:
    cpa_id, from_id, to_id = call.path("cpaId"), call.path("fromPartyId"), call.path("toPartyId")
    try:
        ours, theirs = await _thread(actions.party_ids_of, call.ctx, cpa_id)
    except CpaError as exc:
        raise ProblemError(404, str(exc)) from None
    if from_id not in ours or to_id not in theirs:
        raise ProblemError(400, f"CPA {cpa_id!r} is not between {from_id!r} (us) and {to_id!r}")
    try:
        result = await actions.ping_cpa(call.ctx, cpa_id)
    except CpaError as exc:
        raise ProblemError(400, str(exc)) from None
    record_audit(call, "ebms.ping", cpa_id, outcome="ok" if result.ok else "failed")
    if not result.ok:
        raise ProblemError(502, f"{result.diagnosis.summary}: {result.diagnosis.advice}")
    return no_content()


async def send_message(call: Call) -> Any:
    request: MessageRequestModel = call.body
    p = request.properties
    if p.ref_to_message_id:
        raise ProblemError(400, "refToMessageId is not supported on send (docs/api.md)")
    parts = [
        actions.Part(
            d.content_id or f"{call.ctx.ids.uuid()}@ggk-ebms",
            d.content_type,
            _b64(d.content, f"dataSources[{n}].content"),
        )
        for n, d in enumerate(request.data_sources)
    ]
    if call.token is not None and call.token.gemeentecodes is not None:
        gemeente = _sent_for(parts[0].data) if parts else None
        if not call.token.may_act_for(gemeente):
            # The GGk portal's refusal for a gemeentecode outside the user's rights.
            raise ProblemError(403, f"Organisatie {gemeente or '(onbekend)'} is niet geautoriseerd")
    try:
        stored = await _thread(
            actions.send,
            call.ctx,
            cpa_id=p.cpa_id,
            service=p.service,
            action=p.action,
            parts=parts,
            from_party_id=p.from_party_id,
            to_party_id=p.to_party_id,
            role=p.from_role,
            conversation_id=p.conversation_id,
            message_id=p.message_id,
        )
    except DuplicateMessageError as exc:
        raise ProblemError(409, str(exc)) from None
    except (GgkEbmsError, ValueError) as exc:
        raise ProblemError(400, str(exc)) from None
    record_audit(call, "message.send", stored.message_id, detail=f"{p.cpa_id} {p.action}")
    return text_response(stored.message_id)


def _find(call: Call, message_id: str, *directions: str) -> StoredMessage:
    store = MessageStore(call.ctx.database)
    for direction in directions:
        found = store.find(direction, message_id)
        if found is not None and found.kind == "business":
            # Rights per gemeentecode (docs/koppeltabel.md): another gemeente's message is unknown.
            if call.token is not None and not call.token.may_act_for(
                message_gemeentecode(call.ctx.database, found.pk)
            ):
                break
            return found
    raise ProblemError(404, "no such message")


def _visible_ids(call: Call, message_ids: list[str]) -> list[str]:
    """``message_ids`` without those of gemeenten the token may not act for."""
    token = call.token
    if token is None or token.gemeentecodes is None:
        return message_ids
    codes = gemeentecodes_by_message_id(call.ctx.database, message_ids)
    return [i for i in message_ids if token.may_act_for(codes.get(i))]


def _sent_for(data: bytes) -> str | None:
    """The gemeentecode a message to send is for: the zender of its StUF envelope."""
    try:
        return parse_envelope(data).stuurgegevens.zender.organisatie
    except (StufError, XmlError):
        return None


async def resend_message(call: Call) -> Any:
    original = await _thread(_find, call, call.path("messageId"), "out")
    try:
        stored = await _thread(actions.resend, call.ctx, original)
    except actions.NotResendable as exc:
        raise ProblemError(409, str(exc)) from None
    except GgkEbmsError as exc:
        raise ProblemError(400, str(exc)) from None
    record_audit(call, "message.resend", original.message_id, detail=f"as {stored.message_id}")
    return text_response(stored.message_id)


async def unprocessed_messages(call: Call) -> Any:
    query: MessageFilterQuery = call.query
    ids = await _thread(
        MarkStore(call.ctx.database).unprocessed_message_ids,
        query.filters(),
        not_statuses=NOT_OFFERED_RECEIVED,
        limit=query.limit,
    )
    ids = await _thread(_visible_ids, call, list(ids))
    return json_response(OPS["messages.unprocessed"], ids)


def _message_model(call: Call, message: StoredMessage, processed: bool) -> MessageModel:
    parts = MessageStore(call.ctx.database).parts(message.pk)
    return MessageModel(
        properties=MessagePropertiesModel(
            cpa_id=message.cpa_id,
            from_party=PartyModel(party_id=message.from_party_id, role=message.from_role),
            to_party=PartyModel(party_id=message.to_party_id, role=message.to_role),
            service=message.service,
            action=message.action,
            timestamp=message.timestamp,
            conversation_id=message.conversation_id,
            message_id=message.message_id,
            ref_to_message_id=message.ref_to_message_id,
            message_status=ebms_core_status(message.direction, message.status, processed_mark=processed),
        ),
        data_sources=[
            DataSourceModel(
                content_id=p.content_id,
                content_type=p.content_type,
                content=base64.b64encode(p.data).decode("ascii"),
            )
            for p in parts
        ],
    )


def _get(call: Call, message_id: str, process: bool) -> MessageModel:
    message = _find(call, message_id, "in", "out")
    marks = MarkStore(call.ctx.database, call.ctx.clock)
    processed = message.direction == "in" and marks.is_marked(message.pk, "message")
    if process and message.direction == "in" and not processed:
        marks.mark(message.pk, "message")
        record_audit(call, "message.processed", message.message_id)
        processed = True
    return _message_model(call, message, processed)


async def get_message(call: Call) -> Any:
    process = call.query.process
    if process and call.token is not None and not ({"send", "admin"} & call.token.scopes):
        raise ProblemError(403, "process=true needs the scope 'send'")
    model = await _thread(_get, call, call.path("messageId"), process)
    return json_response(OPS["messages.get"], model)


def _mark(call: Call, message_id: str, what: str, directions: tuple[str, ...]) -> bool:
    message = _find(call, message_id, *directions)
    if what == "event" and event_type(message.direction, message.status) is None:
        raise ProblemError(404, "this message has no event yet")
    return MarkStore(call.ctx.database, call.ctx.clock).mark(message.pk, what)


async def process_message(call: Call) -> Any:
    message_id = call.path("messageId")
    if await _thread(_mark, call, message_id, "message", ("in",)):
        record_audit(call, "message.processed", message_id)
    return no_content()


async def message_status(call: Call) -> Any:
    def status() -> MessageStatusModel:
        message = _find(call, call.path("messageId"), "out", "in")
        processed = message.direction == "in" and MarkStore(call.ctx.database).is_marked(
            message.pk, "message"
        )
        return MessageStatusModel(
            status=ebms_core_status(message.direction, message.status, processed_mark=processed),
            timestamp=message.updated_at,
        )

    return json_response(OPS["messages.status"], await _thread(status))


async def unprocessed_events(call: Call) -> Any:
    query: EventFilterQuery = call.query
    kinds = query.event_types or list(EventType)
    condition = event_condition([EVENT_STATES[k] for k in kinds])
    rows = await _thread(
        MarkStore(call.ctx.database).events,
        condition,
        query.filters(),
        unprocessed_only=True,
        limit=query.limit,
    )
    visible = set(await _thread(_visible_ids, call, [row.message_id for row in rows]))
    events = []
    for row in rows:
        if row.message_id not in visible:
            continue
        kind = event_type(row.direction, row.status)
        if kind is not None:
            events.append(MessageEventModel(message_id=row.message_id, type=kind))
    return json_response(OPS["events.unprocessed"], events)


async def process_event(call: Call) -> Any:
    message_id = call.path("messageId")
    if await _thread(_mark, call, message_id, "event", ("out", "in")):
        record_audit(call, "event.processed", message_id)
    return no_content()


def _op(key: str, method: str, path: str, scope: str, handler: Any, summary: str, **kw: Any) -> Operation:
    return Operation(method, PREFIX + path, scope, handler, summary, f"v19.{key}", TAG, **kw)


_CPA_BODY = {"raw_body": "text/plain"}
OPERATIONS: list[Operation] = [
    _op("cpas.validate", "POST", "/cpas/validate", "read", validate_cpa, "Validate a CPA", **_CPA_BODY),
    _op("cpas.insert", "POST", "/cpas", "admin", insert_cpa, "Store a CPA", query=Overwrite, **_CPA_BODY),
    _op("cpas.list", "GET", "/cpas", "read", list_cpas, "CPAIds", response=list[str]),
    _op("cpas.cache", "DELETE", "/cpas/cache", "admin", clear_cpa_cache, "Forget the parsed CPAs"),
    _op("cpas.get", "GET", "/cpas/{cpaId}", "read", get_cpa, "A CPA", response_media="text/xml"),
    _op("cpas.delete", "DELETE", "/cpas/{cpaId}", "admin", delete_cpa, "Delete a CPA"),
    _op(
        "urlMappings.set",
        "POST",
        "/urlMappings",
        "admin",
        put_url_mapping,
        "Set a URL mapping",
        body=UrlMappingModel,
    ),
    _op(
        "urlMappings.list",
        "GET",
        "/urlMappings",
        "read",
        list_url_mappings,
        "URL mappings",
        response=list[UrlMappingModel],
    ),
    _op(
        "urlMappings.cache", "DELETE", "/urlMappings/cache", "admin", clear_mapping_cache, "No cache to clear"
    ),
    _op(
        "urlMappings.delete",
        "DELETE",
        "/urlMappings/{source:.+}",
        "admin",
        delete_url_mapping,
        "Delete a URL mapping",
    ),
    _op(
        "certificateMappings.set",
        "POST",
        "/certificateMappings",
        "admin",
        put_certificate_mapping,
        "Set a certificate mapping",
        body=CertificateMappingModel,
    ),
    _op(
        "certificateMappings.list",
        "GET",
        "/certificateMappings",
        "read",
        list_certificate_mappings,
        "Certificate mappings",
        response=list[CertificateMappingModel],
    ),
    _op(
        "certificateMappings.cache",
        "DELETE",
        "/certificateMappings/cache",
        "admin",
        clear_mapping_cache,
        "No cache to clear",
    ),
    _op(
        "certificateMappings.delete",
        "DELETE",
        "/certificateMappings",
        "admin",
        delete_certificate_mapping,
        "Delete a certificate mapping",
        query=CpaIdQuery,
        raw_body="text/plain",
    ),
    _op(
        "ebms.ping",
        "POST",
        "/ebms/ping/{cpaId}/from/{fromPartyId}/to/{toPartyId}",
        "operate",
        ping,
        "Ping the other party",
    ),
    _op(
        "messages.send",
        "POST",
        "/ebms/messages",
        "send",
        send_message,
        "Send a message",
        body=MessageRequestModel,
    ),
    _op(
        "messages.unprocessed",
        "GET",
        "/ebms/messages/unprocessed",
        "read",
        unprocessed_messages,
        "Received messages not processed yet",
        query=MessageFilterQuery,
        response=list[str],
    ),
    _op(
        "messages.resend", "PUT", "/ebms/messages/{messageId}", "send", resend_message, "Send a message again"
    ),
    _op(
        "messages.get",
        "GET",
        "/ebms/messages/{messageId}",
        "read",
        get_message,
        "A message",
        query=ProcessQuery,
        response=MessageModel,
    ),
    _op(
        "messages.process",
        "PATCH",
        "/ebms/messages/{messageId}",
        "send",
        process_message,
        "Mark a received message processed",
    ),
    _op(
        "messages.status",
        "GET",
        "/ebms/messages/{messageId}/status",
        "read",
        message_status,
        "The state of a message",
        response=MessageStatusModel,
    ),
    _op(
        "events.unprocessed",
        "GET",
        "/ebms/events/unprocessed",
        "read",
        unprocessed_events,
        "Events not processed yet",
        query=EventFilterQuery,
        response=list[MessageEventModel],
    ),
    _op(
        "events.process",
        "PATCH",
        "/ebms/events/{messageId}",
        "send",
        process_event,
        "Mark an event processed",
    ),
]
OPS = {op.operation_id.removeprefix("v19."): op for op in OPERATIONS}
