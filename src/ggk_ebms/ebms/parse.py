"""SOAP envelope bytes -> ``EbmsMessage``, and recognising a peer's SOAP Fault.

Two kinds of wrong input, two outcomes (ebMS 2.0 §4.2; docs/ebms.md catalogue):

- what the ebMS header schema (msg-header-2_0.xsd) or SOAP 1.1 forbids — not XML, a DOCTYPE, not a
  SOAP envelope, no ``eb:MessageHeader``, a required element or attribute missing, a dateTime that
  is not one, an empty ``eb:Manifest`` — has no addressable header, so it raises
  ``SoapFaultError(body=False)``: HTTP 500 with an empty body, as the reference does (#16, #41, #43);
- what is schema-valid but wrong for Digikoppeling — ``eb:version="1.0"``, an unknown actor, a
  MessageOrder, a signed AckRequested — is kept in the model as sent; ``validate`` raises the
  catalogue's ``EbmsError`` for it with code, location and description (#12, #29–#36, #38).

The schema's cardinalities are checked here in code, not by loading the XSD at run time: the core
reads no files, and a hand check gives messages that say which element is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final, TypeVar

from lxml import etree

from ggk_ebms import clock
from ggk_ebms.ebms.model import (
    Acknowledgment,
    AckReference,
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
    SoapFault,
    StatusRequest,
    StatusResponse,
    SyncReply,
)
from ggk_ebms.errors import SoapFaultError, XmlError, XmlTooLargeError
from ggk_ebms.ns import DS, EB, SOAP_ACTOR_NEXT, SOAP_ENV, XLINK, XML
from ggk_ebms.xml import local_name, namespace_of, parse, tostring

_T = TypeVar("_T")
_SEVERITIES: Final = frozenset({"Warning", "Error"})
_MESSAGE_STATUSES: Final = frozenset(s.value for s in MessageStatus)
_SOAP_BOOLEANS: Final = {"1": True, "0": False, "true": True, "false": False}
_XSD_BOOLEANS: Final = {"true": True, "1": True, "false": False, "0": False}
# Header blocks this MSH processes; a mustUnderstand block outside them gets a MustUnderstand
# fault (SOAP 1.1 §4.2.3).
_UNDERSTOOD_NAMESPACES: Final = frozenset({EB, DS})
_SINGLE_HEADER_BLOCKS: Final = (
    "MessageHeader",
    "SyncReply",
    "AckRequested",
    "Acknowledgment",
    "ErrorList",
    "MessageOrder",
)


def _eb(local: str) -> str:
    return f"{{{EB}}}{local}"


def _soap(local: str) -> str:
    return f"{{{SOAP_ENV}}}{local}"


_VERSION: Final = _eb("version")
_MUST_UNDERSTAND: Final = _soap("mustUnderstand")
_ACTOR: Final = _soap("actor")


def invalid(reason: str) -> SoapFaultError:
    """An envelope the schema refuses: HTTP 500, empty body (ebMS 2.0 §4.2; catalogue #16, #41, #43)."""
    return SoapFaultError(f"Invalid ebMS envelope: {reason}", faultcode="Client", body=False)


def parse_envelope(soap: bytes, *, max_bytes: int) -> EbmsMessage:
    """Read a SOAP 1.1 ebMS 2.0 envelope into an ``EbmsMessage``.

    Raises ``SoapFaultError`` (``body=False``) for input that is not a schema-valid ebMS envelope,
    with ``http_status=413`` when it is over ``max_bytes``, and ``SoapFaultError`` with faultcode
    ``MustUnderstand`` for a mandatory header block we do not process. Never raises an lxml error.
    """
    return parse_envelope_tree(soap, max_bytes=max_bytes)[0]


def parse_envelope_tree(soap: bytes, *, max_bytes: int) -> tuple[EbmsMessage, etree._Element]:
    """``parse_envelope`` that also hands back the parsed root, so that the receiver checks the
    signature on the same tree instead of parsing the envelope again (one parse per request). The
    root is read here, never changed."""
    root = _parse_xml(soap, max_bytes)
    header_el, body_el = _envelope_parts(root)
    blocks = _header_blocks(header_el)
    if "MessageHeader" not in blocks:
        raise invalid("not an ebXML message: the SOAP Header has no eb:MessageHeader")
    notes: list[str] = []
    header = _message_header(blocks["MessageHeader"], notes)
    body_blocks = _body_blocks(body_el)
    message = EbmsMessage(
        header=header,
        ack_requested=_optional(blocks, "AckRequested", _ack_requested),
        sync_reply=_optional(blocks, "SyncReply", _sync_reply),
        acknowledgment=_optional(blocks, "Acknowledgment", lambda e: _acknowledgment(e, notes)),
        error_list=_optional(blocks, "ErrorList", _error_list),
        message_order=_message_order(blocks.get("MessageOrder")),
        signature=header_el is not None and header_el.find(f"{{{DS}}}Signature") is not None,
        manifest=_optional(body_blocks, "Manifest", _manifest),
        status_request=_optional(body_blocks, "StatusRequest", _status_request),
        status_response=_optional(body_blocks, "StatusResponse", lambda e: _status_response(e, notes)),
        notes=tuple(notes),
    )
    return message, root


def peer_fault(soap: bytes, *, max_bytes: int = 1024 * 1024) -> SoapFault | None:
    """The SOAP 1.1 Fault in a peer's answer, or None when the answer is not a Fault.

    Called on the sending side before anything else reads the response (architecture: "a peer's
    SOAP Fault is recognised before the body is read"). Anything unreadable is "not a Fault" here;
    ``parse_envelope`` then says what is wrong with it.
    """
    if b"Fault" not in soap:
        return None
    try:
        root = parse(soap, max_bytes=max_bytes, what="SOAP response")
    except XmlError:
        return None
    if root.tag != _soap("Envelope"):
        return None
    body = root.find(_soap("Body"))
    fault = None if body is None else body.find(_soap("Fault"))
    if fault is None:
        return None

    # SOAP 1.1 §4.4: faultcode, faultstring, faultactor and detail are unqualified children;
    # some stacks qualify them with the envelope namespace, which is read too.
    def part(local: str) -> etree._Element | None:
        found = fault.find(local)
        return found if found is not None else fault.find(_soap(local))

    code = _text(part("faultcode")) or "Server"
    detail_el = part("detail")
    detail = (
        b"".join(tostring(c) for c in detail_el if isinstance(c.tag, str)) if detail_el is not None else b""
    )
    return SoapFault(
        faultcode=_local_qname(code),
        faultstring=_text(part("faultstring")) or "",
        faultactor=_text(part("faultactor")),
        detail=detail or None,
    )


def parse_xsd_datetime(text: str) -> tuple[datetime, bool]:
    """An xsd:dateTime as an aware UTC datetime, and whether it carried a time zone.

    ebMS 2.0 §3.1, KVS ch. 5; our choice in docs/rules.md: 'Z' or an offset are honoured; a zone-less value is
    UTC. Raises ValueError for anything that is not an xsd:dateTime or out of range (clock.py: total).
    """
    return clock.parse_xsd_datetime(text)


# --- envelope --------------------------------------------------------------------------------------


def _parse_xml(soap: bytes, max_bytes: int) -> etree._Element:
    try:
        return parse(soap, max_bytes=max_bytes, what="SOAP envelope")
    except XmlTooLargeError as exc:
        raise SoapFaultError(str(exc), faultcode="Client", http_status=413, body=False) from None
    except XmlError as exc:
        raise invalid(str(exc)) from None


def _envelope_parts(root: etree._Element) -> tuple[etree._Element | None, etree._Element]:
    """SOAP 1.1 §4: Envelope(Header?, Body, ##other*)."""
    if root.tag != _soap("Envelope"):
        raise invalid("the root element is not a SOAP 1.1 Envelope")
    children = _elements(root)
    header = children[0] if children and children[0].tag == _soap("Header") else None
    rest = children[1:] if header is not None else children
    if not rest or rest[0].tag != _soap("Body"):
        raise invalid("the SOAP Envelope has no Body after its Header")
    for extra in rest[1:]:
        if namespace_of(extra) in (SOAP_ENV, None):
            raise invalid("the SOAP Envelope has an unexpected element after its Body")
    return header, rest[0]


def _header_blocks(header: etree._Element | None) -> dict[str, etree._Element]:
    blocks: dict[str, etree._Element] = {}
    if header is None:
        return blocks
    for element in _elements(header):
        namespace, name = namespace_of(element), local_name(element)
        if namespace == EB and name in _SINGLE_HEADER_BLOCKS:
            if name in blocks:
                # Decision: two MessageHeaders (or two AckRequested…) leave no single header to
                # answer to; refused like a schema violation (docs/ebms.md catalogue hand-built fixtures).
                raise invalid(f"the SOAP Header has more than one eb:{name}")
            blocks[name] = element
        elif namespace not in _UNDERSTOOD_NAMESPACES and _must_understand(element) and _targets_us(element):
            raise SoapFaultError(
                f"Header block {{{namespace}}}{name} is not understood",
                faultcode="MustUnderstand",
            )
    return blocks


def _body_blocks(body: etree._Element) -> dict[str, etree._Element]:
    blocks: dict[str, etree._Element] = {}
    for element in _elements(body):
        name = local_name(element)
        if namespace_of(element) == EB and name in ("Manifest", "StatusRequest", "StatusResponse"):
            if name in blocks:
                raise invalid(f"the SOAP Body has more than one eb:{name}")
            blocks[name] = element
    return blocks


def _must_understand(element: etree._Element) -> bool:
    value = element.get(_MUST_UNDERSTAND)
    return value is not None and _SOAP_BOOLEANS.get(value.strip()) is True


def _targets_us(element: etree._Element) -> bool:
    """SOAP 1.1 §4.2.2: a block is ours when it has no actor (ultimate receiver) or actor next."""
    actor = element.get(_ACTOR)
    return actor is None or actor == SOAP_ACTOR_NEXT


# --- header blocks ---------------------------------------------------------------------------------


def _message_header(element: etree._Element, notes: list[str]) -> MessageHeader:
    where = "eb:MessageHeader"
    version = _header_extension(element, where)
    seq = _Sequence(element, where)
    from_party = _party(seq.one("From"), "eb:From")
    to_party = _party(seq.one("To"), "eb:To")
    cpa_id = _string(seq.one("CPAId"), "eb:CPAId")
    conversation_id = _string(seq.one("ConversationId"), "eb:ConversationId")
    service_el = seq.one("Service")
    service = Service(
        _string(service_el, "eb:Service"), _attribute(service_el, _eb("type"), "eb:Service/@eb:type")
    )
    action = _string(seq.one("Action"), "eb:Action")
    data = _Sequence(seq.one("MessageData"), "eb:MessageData")
    message_id = _string(data.one("MessageId"), "eb:MessageId")
    timestamp = _datetime(data.one("Timestamp"), "eb:MessageData/eb:Timestamp", notes)
    ref_el = data.optional("RefToMessageId")
    ttl_el = data.optional("TimeToLive")
    data.end()
    duplicate_elimination = seq.optional("DuplicateElimination") is not None
    descriptions = tuple(_description(d) for d in seq.many("Description"))
    seq.end_with_other()
    return MessageHeader(
        from_party=from_party,
        to_party=to_party,
        cpa_id=cpa_id,
        conversation_id=conversation_id,
        service=service,
        action=action,
        message_id=message_id,
        timestamp=timestamp,
        ref_to_message_id=_string(ref_el, "eb:RefToMessageId") if ref_el is not None else None,
        time_to_live=_datetime(ttl_el, "eb:TimeToLive", notes) if ttl_el is not None else None,
        duplicate_elimination=duplicate_elimination,
        descriptions=descriptions,
        version=version,
    )


def _party(element: etree._Element, where: str) -> Party:
    seq = _Sequence(element, where)
    ids = seq.many("PartyId")
    if not ids:
        raise invalid(f"{where} has no eb:PartyId")  # catalogue #16
    role_el = seq.optional("Role")
    seq.end()
    party_ids = tuple(
        PartyId(_string(p, f"{where}/eb:PartyId"), _attribute(p, _eb("type"), f"{where}/eb:PartyId/@eb:type"))
        for p in ids
    )
    return Party(party_ids, _string(role_el, f"{where}/eb:Role") if role_el is not None else None)


def _description(element: etree._Element) -> Description:
    lang = element.get(f"{{{XML}}}lang")
    if lang is None:
        raise invalid("eb:Description has no xml:lang")
    return Description(_string(element, "eb:Description"), lang)


def _ack_requested(element: etree._Element) -> AckRequested:
    where = "eb:AckRequested"
    version = _header_extension(element, where)
    _Sequence(element, where).end_with_other()
    signed = element.get(_eb("signed"))
    if signed is None or signed.strip() not in _XSD_BOOLEANS:
        raise invalid(f"{where} needs an xsd:boolean eb:signed attribute")
    return AckRequested(signed=_XSD_BOOLEANS[signed.strip()], actor=element.get(_ACTOR), version=version)


def _sync_reply(element: etree._Element) -> SyncReply:
    where = "eb:SyncReply"
    version = _header_extension(element, where)
    _Sequence(element, where).end_with_other()
    actor = element.get(_ACTOR)
    if actor is None:
        raise invalid(f"{where} has no SOAP:actor attribute")
    return SyncReply(actor=actor, version=version)


def _acknowledgment(element: etree._Element, notes: list[str]) -> Acknowledgment:
    where = "eb:Acknowledgment"
    version = _header_extension(element, where)
    seq = _Sequence(element, where)
    timestamp = _datetime(seq.one("Timestamp"), f"{where}/eb:Timestamp", notes)
    ref = _string(seq.one("RefToMessageId"), f"{where}/eb:RefToMessageId")
    from_el = seq.optional("From")
    references = tuple(_ack_reference(r) for r in seq.many("Reference", namespace=DS))
    seq.end()  # the schema has no wildcard after ds:Reference
    return Acknowledgment(
        timestamp=timestamp,
        ref_to_message_id=ref,
        from_party=_party(from_el, f"{where}/eb:From") if from_el is not None else None,
        references=references,
        actor=element.get(_ACTOR),
        version=version,
    )


def _ack_reference(element: etree._Element) -> AckReference:
    method = element.find(f"{{{DS}}}DigestMethod")
    return AckReference(
        uri=element.get("URI"),
        digest_method=method.get("Algorithm") if method is not None else None,
        digest_value=_text(element.find(f"{{{DS}}}DigestValue")),
    )


def _error_list(element: etree._Element) -> ErrorList:
    where = "eb:ErrorList"
    version = _header_extension(element, where)
    severity = _enumerated(element, _eb("highestSeverity"), _SEVERITIES, f"{where}/@eb:highestSeverity")
    seq = _Sequence(element, where)
    errors = tuple(_error(e) for e in seq.many("Error"))
    if not errors:
        raise invalid(f"{where} has no eb:Error")
    seq.end_with_other()
    return ErrorList(highest_severity=severity, errors=errors, version=version)


def _error(element: etree._Element) -> ErrorEntry:
    where = "eb:Error"
    code = _attribute(element, _eb("errorCode"), f"{where}/@eb:errorCode")
    if code is None:
        raise invalid(f"{where} has no eb:errorCode")
    seq = _Sequence(element, where)
    description_el = seq.optional("Description")
    seq.end_with_other()
    return ErrorEntry(
        code=code,
        severity=_enumerated(element, _eb("severity"), _SEVERITIES, f"{where}/@eb:severity"),
        location=_attribute(element, _eb("location"), f"{where}/@eb:location"),
        description=_description(description_el).text if description_el is not None else None,
        code_context=element.get(_eb("codeContext")),
    )


def _message_order(element: etree._Element | None) -> bool:
    if element is None:
        return False
    where = "eb:MessageOrder"
    _header_extension(element, where)
    seq = _Sequence(element, where)
    number = _string(seq.one("SequenceNumber"), f"{where}/eb:SequenceNumber")
    if not number.isdigit():
        raise invalid(f"{where}/eb:SequenceNumber is not a nonNegativeInteger")
    seq.end_with_other()
    return True


# --- body blocks -----------------------------------------------------------------------------------


def _manifest(element: etree._Element) -> Manifest:
    where = "eb:Manifest"
    version = _body_extension(element, where)
    seq = _Sequence(element, where)
    references = tuple(_manifest_reference(r) for r in seq.many("Reference"))
    if not references:
        raise invalid(f"{where} has no eb:Reference")  # catalogue #41
    seq.end_with_other()
    return Manifest(references=references, version=version)


def _manifest_reference(element: etree._Element) -> ManifestReference:
    where = "eb:Reference"
    href = element.get(f"{{{XLINK}}}href")
    if href is None or not href.strip():
        raise invalid(f"{where} has no xlink:href")
    link_type = element.get(f"{{{XLINK}}}type")
    if link_type is not None and link_type != "simple":
        raise invalid(f"{where}/@xlink:type is fixed to 'simple'")
    seq = _Sequence(element, where)
    seq.many("Schema")
    for description in seq.many("Description"):
        _description(description)
    seq.end_with_other()
    return ManifestReference(
        href=href.strip(), reference_id=element.get(_eb("id")), role=element.get(f"{{{XLINK}}}role")
    )


def _status_request(element: etree._Element) -> StatusRequest:
    where = "eb:StatusRequest"
    version = _body_extension(element, where)
    seq = _Sequence(element, where)
    ref = _string(seq.one("RefToMessageId"), f"{where}/eb:RefToMessageId")
    seq.end_with_other()
    return StatusRequest(ref_to_message_id=ref, version=version)


def _status_response(element: etree._Element, notes: list[str]) -> StatusResponse:
    where = "eb:StatusResponse"
    version = _body_extension(element, where)
    status = _enumerated(element, _eb("messageStatus"), _MESSAGE_STATUSES, f"{where}/@eb:messageStatus")
    seq = _Sequence(element, where)
    ref = _string(seq.one("RefToMessageId"), f"{where}/eb:RefToMessageId")
    timestamp_el = seq.optional("Timestamp")
    seq.end_with_other()
    timestamp = _datetime(timestamp_el, f"{where}/eb:Timestamp", notes) if timestamp_el is not None else None
    return StatusResponse(ref_to_message_id=ref, status=status, timestamp=timestamp, version=version)


# --- schema helpers --------------------------------------------------------------------------------


class _Sequence:
    """Walks the element children of one element in schema order (xsd:sequence)."""

    def __init__(self, element: etree._Element, where: str) -> None:
        self._items = _elements(element)
        self._at = 0
        self._where = where

    def _next_is(self, local: str, namespace: str) -> bool:
        if self._at >= len(self._items):
            return False
        item = self._items[self._at]
        return item.tag == f"{{{namespace}}}{local}"

    def one(self, local: str) -> etree._Element:
        if not self._next_is(local, EB):
            raise invalid(f"{self._where} lacks eb:{local} where the schema wants it")
        self._at += 1
        return self._items[self._at - 1]

    def optional(self, local: str) -> etree._Element | None:
        if self._next_is(local, EB):
            self._at += 1
            return self._items[self._at - 1]
        return None

    def many(self, local: str, namespace: str = EB) -> list[etree._Element]:
        found: list[etree._Element] = []
        while self._next_is(local, namespace):
            found.append(self._items[self._at])
            self._at += 1
        return found

    def end(self) -> None:
        if self._at < len(self._items):
            raise invalid(f"{self._where} has unexpected content {local_name(self._items[self._at])!r}")

    def end_with_other(self) -> None:
        """The rest may only be ``xsd:any namespace="##other"``: elements outside the eb namespace."""
        for item in self._items[self._at :]:
            if namespace_of(item) in (EB, None):
                raise invalid(f"{self._where} has unexpected content {local_name(item)!r}")


def _header_extension(element: etree._Element, where: str) -> str:
    """headerExtension.grp: eb:version and SOAP:mustUnderstand are required (msg-header XSD)."""
    must_understand = element.get(_MUST_UNDERSTAND)
    if must_understand is None or must_understand.strip() not in _SOAP_BOOLEANS:
        raise invalid(f"{where} needs SOAP:mustUnderstand 0 or 1")
    return _body_extension(element, where)


def _body_extension(element: etree._Element, where: str) -> str:
    """bodyExtension.grp: eb:version is required and non-empty; its value is judged by validate."""
    version = element.get(_VERSION)
    if not version:
        raise invalid(f"{where} has no eb:version")
    return version


def _attribute(element: etree._Element, name: str, where: str) -> str | None:
    value = element.get(name)
    if value is not None and not value:
        raise invalid(f"{where} is empty")  # non-empty-string
    return value


def _enumerated(element: etree._Element, name: str, allowed: frozenset[str], where: str) -> str:
    value = element.get(name)
    if value is None or value.strip() not in allowed:
        raise invalid(f"{where} must be one of {', '.join(sorted(allowed))}")
    return value.strip()


def _string(element: etree._Element, where: str) -> str:
    """Text content of a non-empty-string element, surrounding whitespace removed."""
    if len(element):
        raise invalid(f"{where} has child elements where text is expected")
    value = (element.text or "").strip()
    if not value:
        raise invalid(f"{where} is empty")
    return value


def _datetime(element: etree._Element, where: str, notes: list[str]) -> datetime:
    try:
        value, zoned = parse_xsd_datetime(_string(element, where))
    except ValueError:
        raise invalid(f"{where} is not an xsd:dateTime") from None
    if not zoned:
        notes.append(f"{where} has no time zone; taken as UTC")
    return value


def _optional(
    blocks: dict[str, etree._Element], local: str, read: Callable[[etree._Element], _T]
) -> _T | None:
    element = blocks.get(local)
    return None if element is None else read(element)


def _elements(element: etree._Element) -> list[etree._Element]:
    return [c for c in element if isinstance(c.tag, str)]


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    value = (element.text or "").strip()
    return value or None


def _local_qname(value: str) -> str:
    """``SOAP-ENV:Client`` -> ``Client`` (SOAP 1.1 §4.4.1 fault codes are QNames)."""
    return value.rsplit(":", 1)[-1] if ":" in value else value
