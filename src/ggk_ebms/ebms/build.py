"""Build the envelopes this MSH sends: business messages, the six MSH signals and SOAP Faults.

Every builder makes the ``EbmsMessage`` value first and then writes it with ``render_envelope``:
SOAP 1.1, UTF-8, prefixes ``SOAP``/``eb``/``xlink``/``ds``, ``eb:version="2.0"`` everywhere and
``SOAP:mustUnderstand="1"`` on the header blocks whose schema group demands it (msg-header XSD
headerExtension.grp; ebMS 2.0 §3.2, KVS ch. 5). Elements are made with lxml's factories, so every value is
escaped and the output is well-formed by construction; ``parse_envelope`` reads it back to the
same value (tests). Time and identifiers come from the ``Clock`` and ``IdGenerator`` passed in.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from lxml import etree

from ggk_ebms.clock import Clock, IdGenerator, format_timestamp, utc
from ggk_ebms.ebms.ack_template import render_acknowledgment
from ggk_ebms.ebms.model import (
    Acknowledgment,
    AckRequested,
    Description,
    EbmsMessage,
    ErrorEntry,
    ErrorList,
    Manifest,
    ManifestReference,
    MessageHeader,
    MessageStatus,
    Party,
    PartyId,
    Service,
    SignalAction,
    StatusRequest,
    StatusResponse,
    SyncReply,
)
from ggk_ebms.errors import EbmsError, Severity
from ggk_ebms.mime.related import MimePart
from ggk_ebms.ns import (
    ACTOR_TO_PARTY_MSH,
    DS,
    EB,
    EBMS_ERRORS_CONTEXT,
    EBMS_SERVICE,
    NSMAP_SOAP,
    SOAP_ACTOR_NEXT,
    SOAP_ENV,
    XLINK,
    XML,
)
from ggk_ebms.xml import parse

_SOAP_FAULT_CODES: Final = ("VersionMismatch", "MustUnderstand", "Client", "Server")
# XML 1.0 §2.2 Char: anything else cannot be written and is replaced in fault texts.
_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MAX_FAULT_DETAIL: Final = 1024 * 1024


def _eb(local: str) -> str:
    return f"{{{EB}}}{local}"


def _soap(local: str) -> str:
    return f"{{{SOAP_ENV}}}{local}"


_VERSION: Final = _eb("version")
_MUST_UNDERSTAND: Final = _soap("mustUnderstand")
_ACTOR: Final = _soap("actor")
_LANG: Final = f"{{{XML}}}lang"


@dataclass(frozen=True)
class BuiltMessage:
    """An envelope ready to send (or to store and replay), with the header it carries.

    ``kind`` is 'business' or the signal action, as ``EbmsMessage.kind``.
    """

    header: MessageHeader
    kind: str
    envelope: bytes


# --- signals ---------------------------------------------------------------------------------------


def build_acknowledgment(
    message: EbmsMessage,
    *,
    ids: IdGenerator,
    clock: Clock,
    our_party: PartyId,
    references: Sequence[bytes | etree._Element] = (),
) -> BuiltMessage:
    """The Acknowledgment of a received ``message`` (ebMS 2.0 §6.3.2).

    From = our typed PartyId without Role, To = the original sender, CPAId and ConversationId
    copied, new MessageId and Timestamp, RefToMessageId = the acknowledged id, and no TimeToLive
    or DuplicateElimination (jentrata PR #66). For a signed Ack, ``references`` are the
    ``ds:Reference`` elements of the message's SignedInfo, copied unchanged (ebMS 2.0 §6.3, KVS ch. 5).
    """
    received = message.header
    header = _signal_header(
        received,
        action=SignalAction.ACKNOWLEDGMENT,
        from_party=Party((our_party,)),
        to_party=_without_role(received.from_party),
        ids=ids,
        clock=clock,
    )
    if not references:
        # Unsigned: the same bytes from a pre-serialised template (ebms/ack_template.py).
        return BuiltMessage(header, SignalAction.ACKNOWLEDGMENT.value, render_acknowledgment(header))
    copies = tuple(_reference_element(r) for r in references)
    ack = Acknowledgment(
        timestamp=header.timestamp,
        ref_to_message_id=received.message_id,
        from_party=Party((our_party,)),
        actor=ACTOR_TO_PARTY_MSH,
    )
    built = EbmsMessage(header=header, acknowledgment=ack)
    return BuiltMessage(header, built.kind, render_envelope(built, ack_references=copies))


def build_message_error(
    message: EbmsMessage, errors: Sequence[EbmsError], *, ids: IdGenerator, clock: Clock
) -> BuiltMessage:
    """The MessageError about ``message`` (ebMS 2.0 §4.2): From/To swapped, no Role, same CPAId and
    ConversationId, RefToMessageId = the failing id, an ErrorList in the default codeContext
    (KVS5) with an English Description per error, an empty Body."""
    if not errors:
        raise ValueError("a MessageError needs at least one error")
    received = message.header
    header = _signal_header(
        received,
        action=SignalAction.MESSAGE_ERROR,
        from_party=_without_role(received.to_party),
        to_party=_without_role(received.from_party),
        ids=ids,
        clock=clock,
    )
    built = EbmsMessage(header=header, error_list=_error_list(errors))
    return BuiltMessage(header, built.kind, render_envelope(built))


def build_pong(ping: EbmsMessage, *, ids: IdGenerator, clock: Clock) -> BuiltMessage:
    """Pong: From/To swapped, ConversationId kept, RefToMessageId = the Ping's id (ebMS 2.0 §7-§8)."""
    received = ping.header
    header = _signal_header(
        received,
        action=SignalAction.PONG,
        from_party=_without_role(received.to_party),
        to_party=_without_role(received.from_party),
        ids=ids,
        clock=clock,
    )
    built = EbmsMessage(header=header)
    return BuiltMessage(header, built.kind, render_envelope(built))


def build_status_response(
    request: EbmsMessage,
    *,
    status: str,
    status_timestamp: datetime | None,
    ids: IdGenerator,
    clock: Clock,
) -> BuiltMessage:
    """StatusResponse to a StatusRequest (ebMS 2.0 §7-§8, §7.3.2).

    ``status`` is one of Received, Processed, Forwarded, NotRecognized, UnAuthorized;
    ``status_timestamp`` is the Timestamp of the asked-about message, given for the first three.
    """
    if request.status_request is None:
        raise ValueError("a StatusResponse answers a message with an eb:StatusRequest")
    message_status = MessageStatus(status)
    received = request.header
    header = _signal_header(
        received,
        action=SignalAction.STATUS_RESPONSE,
        from_party=_without_role(received.to_party),
        to_party=_without_role(received.from_party),
        ids=ids,
        clock=clock,
    )
    response = StatusResponse(
        ref_to_message_id=request.status_request.ref_to_message_id,
        status=message_status.value,
        timestamp=_millis(status_timestamp) if status_timestamp is not None else None,
    )
    built = EbmsMessage(header=header, status_response=response)
    return BuiltMessage(header, built.kind, render_envelope(built))


def build_ping(
    agreement_id: str,
    from_party: PartyId,
    to_party: PartyId,
    *,
    ids: IdGenerator,
    clock: Clock,
    conversation_id: str | None = None,
    sync_reply: bool = False,
) -> BuiltMessage:
    """A Ping (ebMS 2.0 §7-§8): our connectivity check. ``sync_reply`` asks for the Pong in the HTTP
    response (set it when our MSH channel is mshSignalsOnly, ebMS 2.0 §4.3, BP EB015)."""
    header = _new_signal_header(
        agreement_id, from_party, to_party, SignalAction.PING, ids, clock, conversation_id
    )
    built = EbmsMessage(header=header, sync_reply=SyncReply(SOAP_ACTOR_NEXT) if sync_reply else None)
    return BuiltMessage(header, built.kind, render_envelope(built))


def build_status_request(
    agreement_id: str,
    from_party: PartyId,
    to_party: PartyId,
    *,
    ids: IdGenerator,
    clock: Clock,
    ref_to_message_id: str,
    conversation_id: str | None = None,
    sync_reply: bool = False,
) -> BuiltMessage:
    """A StatusRequest about the message ``ref_to_message_id`` we sent (ebMS 2.0 §7-§8)."""
    header = _new_signal_header(
        agreement_id, from_party, to_party, SignalAction.STATUS_REQUEST, ids, clock, conversation_id
    )
    built = EbmsMessage(
        header=header,
        sync_reply=SyncReply(SOAP_ACTOR_NEXT) if sync_reply else None,
        status_request=StatusRequest(ref_to_message_id),
    )
    return BuiltMessage(header, built.kind, render_envelope(built))


# --- business messages -----------------------------------------------------------------------------


def build_business_message(
    *,
    cpa_id: str,
    from_party: PartyId,
    from_role: str,
    to_party: PartyId,
    to_role: str,
    service: str,
    service_type: str | None,
    action: str,
    conversation_id: str,
    message_id: str,
    timestamp: datetime,
    time_to_live: datetime | None,
    ack_requested: bool,
    ack_signed: bool,
    duplicate_elimination: bool,
    sync_reply: bool,
    content_ids: Sequence[str],
    description: str | None = None,
    description_lang: str = "en",
) -> BuiltMessage:
    """A business message as the sending channel's flags say (Digikoppeling KVS ch. 3, BP ch. 3; ebMS 2.0
    §3.1, KVS ch. 5; ebMS 2.0 §3.2, KVS ch. 5; ebMS 2.0 §4.3, BP EB015).

    AckRequested targets toPartyMSH (KVS3: end-to-end), SyncReply the next SOAP node; the Manifest
    has one ``xlink:href="cid:…" xlink:type="simple"`` Reference per payload part and is left out
    when there is none (#37: no Manifest is valid).
    """
    header = MessageHeader(
        from_party=Party((from_party,), from_role),
        to_party=Party((to_party,), to_role),
        cpa_id=cpa_id,
        conversation_id=conversation_id,
        service=Service(service, service_type),
        action=action,
        message_id=message_id,
        timestamp=_millis(timestamp),
        time_to_live=_millis(time_to_live) if time_to_live is not None else None,
        duplicate_elimination=duplicate_elimination,
        descriptions=(Description(description, description_lang),) if description else (),
    )
    manifest = (
        Manifest(tuple(ManifestReference(f"cid:{cid}") for cid in content_ids)) if content_ids else None
    )
    built = EbmsMessage(
        header=header,
        ack_requested=AckRequested(signed=ack_signed, actor=ACTOR_TO_PARTY_MSH) if ack_requested else None,
        sync_reply=SyncReply(SOAP_ACTOR_NEXT) if sync_reply else None,
        manifest=manifest,
    )
    return BuiltMessage(header, built.kind, render_envelope(built))


# --- SOAP Fault ------------------------------------------------------------------------------------


def build_soap_fault(faultcode: str, faultstring: str, detail: bytes | None = None) -> bytes:
    """A SOAP 1.1 Fault envelope (SOAP 1.1 §4.4). ``faultcode`` is a SOAP code such as
    ``Client`` or ``Client.Authentication``; ``detail`` is one XML element (e.g. ``error_list_xml``,
    for the "error without async channel" case of ebMS 2.0 §4.2)."""
    local = faultcode.rsplit(":", 1)[-1]
    if local.split(".", 1)[0] not in _SOAP_FAULT_CODES:
        raise ValueError(f"{faultcode!r} is not a SOAP 1.1 fault code")
    envelope = etree.Element(_soap("Envelope"), nsmap={"SOAP": SOAP_ENV})
    body = etree.SubElement(envelope, _soap("Body"))
    fault = etree.SubElement(body, _soap("Fault"))
    etree.SubElement(fault, "faultcode").text = f"SOAP:{local}"
    etree.SubElement(fault, "faultstring").text = _NOT_XML_CHAR.sub("?", faultstring)
    if detail is not None:
        etree.SubElement(fault, "detail").append(
            parse(detail, max_bytes=_MAX_FAULT_DETAIL, what="fault detail")
        )
    return _serialise(envelope)


def error_list_xml(errors: Sequence[EbmsError]) -> bytes:
    """An ``eb:ErrorList`` element on its own, for a SOAP Fault detail (ebMS 2.0 §4.2)."""
    element = _error_list_element(_error_list(errors), parent=None)
    return etree.tostring(element, encoding="utf-8")


# --- duplicate detection ---------------------------------------------------------------------------


def content_digest(message: EbmsMessage, parts: Sequence[MimePart]) -> str:
    """SHA-256 over what makes a message the same message (ebMS 2.0 §6.5.3; our choice in docs/rules.md).

    Identical = same MessageId, CPAId, PartyIds, Service, Action, ConversationId and payload
    digests; signature bytes, timestamps and MIME framing do not count. Fields are length-prefixed
    so no two different messages share an input.
    """
    header = message.header
    digest = hashlib.sha256(b"ggk-ebms content digest v1")
    fields: list[str | None] = [header.message_id, header.cpa_id, header.conversation_id]
    for party in (header.from_party, header.to_party):
        fields.append(str(len(party.party_ids)))
        for pid in party.party_ids:
            fields += [pid.value, pid.type]
    fields += [header.service.value, header.service.type, header.action, str(len(parts))]
    for part in parts:
        fields += [part.content_id, part.sha256()]
    for value in fields:
        if value is None:
            digest.update(b"\x00")
        else:
            encoded = value.encode("utf-8")
            digest.update(b"\x01" + len(encoded).to_bytes(8, "big") + encoded)
    return digest.hexdigest()


# --- writing ---------------------------------------------------------------------------------------


def render_envelope(message: EbmsMessage, *, ack_references: Iterable[etree._Element] = ()) -> bytes:
    """Write ``message`` as a SOAP 1.1 envelope (UTF-8, with XML declaration).

    ``ack_references`` are ``ds:Reference`` elements copied into the Acknowledgment (signed Acks).
    """
    envelope = etree.Element(_soap("Envelope"), nsmap=NSMAP_SOAP)
    soap_header = etree.SubElement(envelope, _soap("Header"))
    _message_header_element(soap_header, message.header)
    if message.sync_reply is not None:
        sync = _header_block(soap_header, "SyncReply", message.sync_reply.version)
        sync.set(_ACTOR, message.sync_reply.actor)
    if message.ack_requested is not None:
        ack_requested = _header_block(soap_header, "AckRequested", message.ack_requested.version)
        if message.ack_requested.actor is not None:
            ack_requested.set(_ACTOR, message.ack_requested.actor)
        ack_requested.set(_eb("signed"), "true" if message.ack_requested.signed else "false")
    if message.acknowledgment is not None:
        _acknowledgment_element(soap_header, message.acknowledgment, ack_references)
    if message.error_list is not None:
        _error_list_element(message.error_list, parent=soap_header)
    body = etree.SubElement(envelope, _soap("Body"))
    if message.manifest is not None:
        manifest = _body_block(body, "Manifest", message.manifest.version)
        for reference in message.manifest.references:
            ref = etree.SubElement(manifest, _eb("Reference"))
            if reference.reference_id is not None:
                ref.set(_eb("id"), reference.reference_id)
            ref.set(f"{{{XLINK}}}href", reference.href)
            ref.set(f"{{{XLINK}}}type", "simple")
            if reference.role is not None:
                ref.set(f"{{{XLINK}}}role", reference.role)
    if message.status_request is not None:
        request = _body_block(body, "StatusRequest", message.status_request.version)
        _text(request, "RefToMessageId", message.status_request.ref_to_message_id)
    if message.status_response is not None:
        response = _body_block(body, "StatusResponse", message.status_response.version)
        response.set(_eb("messageStatus"), message.status_response.status)
        _text(response, "RefToMessageId", message.status_response.ref_to_message_id)
        if message.status_response.timestamp is not None:
            _text(response, "Timestamp", format_timestamp(message.status_response.timestamp))
    return _serialise(envelope)


def _message_header_element(parent: etree._Element, header: MessageHeader) -> None:
    element = _header_block(parent, "MessageHeader", header.version)
    _party_element(element, "From", header.from_party)
    _party_element(element, "To", header.to_party)
    _text(element, "CPAId", header.cpa_id)
    _text(element, "ConversationId", header.conversation_id)
    service = _text(element, "Service", header.service.value)
    if header.service.type is not None:
        service.set(_eb("type"), header.service.type)
    _text(element, "Action", header.action)
    data = etree.SubElement(element, _eb("MessageData"))
    _text(data, "MessageId", header.message_id)
    _text(data, "Timestamp", format_timestamp(header.timestamp))
    if header.ref_to_message_id is not None:
        _text(data, "RefToMessageId", header.ref_to_message_id)
    if header.time_to_live is not None:
        _text(data, "TimeToLive", format_timestamp(header.time_to_live))
    if header.duplicate_elimination:
        etree.SubElement(element, _eb("DuplicateElimination"))
    for description in header.descriptions:
        _text(element, "Description", description.text).set(_LANG, description.lang)


def _party_element(parent: etree._Element, local: str, party: Party) -> None:
    element = etree.SubElement(parent, _eb(local))
    for pid in party.party_ids:
        id_element = _text(element, "PartyId", pid.value)
        if pid.type is not None:
            id_element.set(_eb("type"), pid.type)
    if party.role is not None:
        _text(element, "Role", party.role)


def _acknowledgment_element(
    parent: etree._Element, ack: Acknowledgment, references: Iterable[etree._Element]
) -> None:
    element = _header_block(parent, "Acknowledgment", ack.version)
    if ack.actor is not None:
        element.set(_ACTOR, ack.actor)
    _text(element, "Timestamp", format_timestamp(ack.timestamp))
    _text(element, "RefToMessageId", ack.ref_to_message_id)
    if ack.from_party is not None:
        _party_element(element, "From", ack.from_party)
    for reference in references:
        element.append(reference)


def _error_list_element(errors: ErrorList, *, parent: etree._Element | None) -> etree._Element:
    if parent is None:
        element = etree.Element(_eb("ErrorList"), nsmap=NSMAP_SOAP)
        element.set(_VERSION, errors.version)
        element.set(_MUST_UNDERSTAND, "1")
    else:
        element = _header_block(parent, "ErrorList", errors.version)
    element.set(_eb("highestSeverity"), errors.highest_severity)
    for entry in errors.errors:
        error = etree.SubElement(element, _eb("Error"))
        error.set(_eb("codeContext"), entry.code_context or EBMS_ERRORS_CONTEXT)
        error.set(_eb("errorCode"), entry.code)
        error.set(_eb("severity"), entry.severity)
        if entry.location:
            error.set(_eb("location"), _NOT_XML_CHAR.sub("?", entry.location))
        if entry.description:
            # ebMS 2.0 §4.2.3.2.4: the Description carries xml:lang.
            _text(error, "Description", _NOT_XML_CHAR.sub("?", entry.description)).set(_LANG, "en")
    return element


def _header_block(parent: etree._Element, local: str, version: str) -> etree._Element:
    """A header block of headerExtension.grp: eb:version and SOAP:mustUnderstand="1"."""
    element = etree.SubElement(parent, _eb(local))
    element.set(_VERSION, version)
    element.set(_MUST_UNDERSTAND, "1")
    return element


def _body_block(parent: etree._Element, local: str, version: str) -> etree._Element:
    """A body block of bodyExtension.grp: eb:version only."""
    element = etree.SubElement(parent, _eb(local))
    element.set(_VERSION, version)
    return element


def _text(parent: etree._Element, local: str, value: str) -> etree._Element:
    element = etree.SubElement(parent, _eb(local))
    element.text = value
    return element


def _serialise(envelope: etree._Element) -> bytes:
    return etree.tostring(envelope, encoding="UTF-8", xml_declaration=True)


# --- values ----------------------------------------------------------------------------------------


def _signal_header(
    received: MessageHeader,
    *,
    action: SignalAction,
    from_party: Party,
    to_party: Party,
    ids: IdGenerator,
    clock: Clock,
) -> MessageHeader:
    """Header of a signal about ``received``: same CPAId and ConversationId (KVS5, EB016), the
    signal service, a new MessageId and Timestamp, RefToMessageId = the received id, no Role,
    TimeToLive or DuplicateElimination (Digikoppeling KVS ch. 5)."""
    return MessageHeader(
        from_party=from_party,
        to_party=to_party,
        cpa_id=received.cpa_id,
        conversation_id=received.conversation_id,
        service=Service(EBMS_SERVICE),
        action=action.value,
        message_id=ids.message_id(),
        timestamp=_millis(clock.now()),
        ref_to_message_id=received.message_id,
    )


def _new_signal_header(
    agreement_id: str,
    from_party: PartyId,
    to_party: PartyId,
    action: SignalAction,
    ids: IdGenerator,
    clock: Clock,
    conversation_id: str | None,
) -> MessageHeader:
    return MessageHeader(
        from_party=Party((from_party,)),
        to_party=Party((to_party,)),
        cpa_id=agreement_id,
        conversation_id=conversation_id or ids.uuid(),
        service=Service(EBMS_SERVICE),
        action=action.value,
        message_id=ids.message_id(),
        timestamp=_millis(clock.now()),
    )


def _without_role(party: Party) -> Party:
    return replace(party, role=None)


def _error_list(errors: Sequence[EbmsError]) -> ErrorList:
    entries = tuple(
        ErrorEntry(
            code=error.code.value,
            severity=error.severity.value,
            location=error.location,
            description=error.description,
            code_context=EBMS_ERRORS_CONTEXT,
        )
        for error in errors
    )
    highest = Severity.ERROR if any(e.severity == Severity.ERROR for e in errors) else Severity.WARNING
    return ErrorList(highest_severity=highest.value, errors=entries)


def _reference_element(reference: bytes | etree._Element) -> etree._Element:
    element = parse(reference, what="ds:Reference") if isinstance(reference, bytes) else reference
    if element.tag != f"{{{DS}}}Reference":
        raise ValueError("an Acknowledgment can only echo ds:Reference elements")
    return _copy(element)


def _copy(element: etree._Element) -> etree._Element:
    """A detached copy, so the caller's tree (the received message) is left intact."""
    return copy.deepcopy(element)


def _millis(moment: datetime) -> datetime:
    """UTC, cut to the milliseconds we write (ebMS 2.0 §3.1, KVS ch. 5), so the value equals what is sent."""
    value = utc(moment)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)
