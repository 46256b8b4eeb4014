"""The negative-case catalogue on the project's own material: no ../shared needed.

The same rules as tests/test_ebms_catalogue.py (which fills the reference adapter's templates),
here on messages built by the independent test peer (tests/peer.py) under the project's own osb-rm
CPA with syncReplyMode mshSignalsOnly (tests/endpoint.py ``sync_cpa``). Each case changes one
thing in an otherwise valid message and checks the exact verdict: the eb:Error code, location and
description (ebMS 2.0 §4.2.3.4 and the Digikoppeling Koppelvlakstandaard ebMS2 checks as
docs/ebms.md lists them), or the SOAP Fault / empty HTTP 500.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from lxml import etree

from ggk_ebms.cpa.model import Agreement
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.ebms import validate
from ggk_ebms.ebms.fault import cpa_not_found_fault
from ggk_ebms.ebms.model import EbmsMessage
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.ebms.validate import InboundContext, validate_inbound
from ggk_ebms.errors import EbmsError, ErrorCode, SoapFaultError
from ggk_ebms.mime.related import MimePart, build_related, split_body
from tests import peer
from tests.endpoint import ACTION, GEMEENTE, RINIS, SERVICE, sync_cpa

MH = "//Header/MessageHeader"
MAX_BYTES = 1024 * 1024
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
EB_NS = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
NS = {"SOAP": SOAP_NS, "eb": EB_NS}
PAYLOAD_CID = "payload-1@peer.test"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@cache
def agreement() -> Agreement:
    return parse_agreement(sync_cpa())


def header(**changes: object) -> peer.Header:
    """A valid Di01 from RINIS (role GGk) to the gemeente under the sync CPA, at NOW."""
    h = peer.Header(
        agreement().cpa_id,
        RINIS,
        GEMEENTE,
        SERVICE,
        ACTION,
        from_role="GGk",
        to_role="Gemeente",
        message_id="6f1c7c0e-3b0a-4d4e-9a53-1f6f4c1f2a10@peer.test",
        timestamp=stamp(NOW),
        time_to_live=stamp(NOW + timedelta(hours=1)),
    )
    for name, value in changes.items():
        setattr(h, name, value)
    return h


def receive(
    envelope: bytes,
    attachments: tuple[str, ...] = (),
    *,
    known: Callable[[str], bool] | None = None,
) -> tuple[EbmsMessage, InboundContext]:
    """What the inbound pipeline does with one request, up to the verdict (docs/ebms.md)."""
    parts = [MimePart(cid, "application/xml", b"<payload/>") for cid in attachments]
    content_type, body = build_related(envelope, parts) if parts else ("text/xml; charset=UTF-8", envelope)
    split = split_body(content_type, body)
    message = parse_envelope(split.soap.data, max_bytes=MAX_BYTES)
    if message.header.cpa_id != agreement().cpa_id:
        raise cpa_not_found_fault(message.header.cpa_id)
    context = validate_inbound(
        message,
        agreement(),
        our_party_ids=(GEMEENTE,),
        now=NOW,
        attachment_ids=[p.content_id for p in split.attachments if p.content_id],
        known_message_ids=known,
    )
    return message, context


Edit = Callable[[etree._Element], None]


def edited(envelope: bytes, *edits: Edit) -> bytes:
    root = etree.fromstring(envelope)
    for edit in edits:
        edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def set_attribute(path: str, name: str, value: str) -> Edit:
    def edit(root: etree._Element) -> None:
        (element,) = root.xpath(path, namespaces=NS)
        element.set(name, value)

    return edit


def remove(path: str) -> Edit:
    def edit(root: etree._Element) -> None:
        (element,) = root.xpath(path, namespaces=NS)
        element.getparent().remove(element)

    return edit


@dataclass(frozen=True)
class Case:
    code: ErrorCode
    location: str
    description: str
    header: dict[str, object] = field(default_factory=dict)
    envelope: dict[str, object] = field(default_factory=dict)
    edits: tuple[Edit, ...] = ()
    attachments: tuple[str, ...] = ()
    known: Callable[[str], bool] | None = None


def _unknown(_: str) -> bool:
    return False


ACK = "//SOAP:Header/eb:AckRequested"
SYNC = "//SOAP:Header/eb:SyncReply"
INCONSISTENT = ErrorCode.INCONSISTENT
NOT_RECOGNIZED = ErrorCode.VALUE_NOT_RECOGNIZED
NOT_FOUND = "Value not found."
OTHER_OIN = "00000099000009999999"
MESSAGE_ORDER = (
    '<eb:MessageOrder eb:version="2.0" SOAP:mustUnderstand="1">'
    "<eb:SequenceNumber>0</eb:SequenceNumber></eb:MessageOrder>"
)

CASES: dict[str, Case] = {
    "12_invalid_message_header_version": Case(
        INCONSISTENT, f"{MH}/@version", "Invalid value.", envelope={"header_version": "3.0"}
    ),
    "14_invalid_from_party_id": Case(
        INCONSISTENT, f"{MH}/From/PartyId", NOT_FOUND, {"from_party": OTHER_OIN}
    ),
    "15_invalid_from_party_type": Case(
        INCONSISTENT, f"{MH}/From/PartyId", NOT_FOUND, {"party_type": "urn:osb:unknown"}
    ),
    "17_invalid_from_role": Case(NOT_RECOGNIZED, f"{MH}/Action", NOT_FOUND, {"from_role": "X"}),
    "18_missing_from_role": Case(INCONSISTENT, f"{MH}/From/Role", "Invalid value.", {"from_role": None}),
    "19_invalid_to_party_id": Case(INCONSISTENT, f"{MH}/To/PartyId", NOT_FOUND, {"to_party": OTHER_OIN}),
    "20_invalid_to_party_type": Case(
        INCONSISTENT,
        f"{MH}/To/PartyId",
        NOT_FOUND,
        edits=(set_attribute("//eb:To/eb:PartyId", f"{{{EB_NS}}}type", "urn:osb:unknown"),),
    ),
    "21_invalid_to_role": Case(NOT_RECOGNIZED, f"{MH}/Action", NOT_FOUND, {"to_role": "X"}),
    "22_invalid_service": Case(NOT_RECOGNIZED, f"{MH}/Action", NOT_FOUND, {"service": "ggk:onbekend:1.0"}),
    "23_invalid_service_type": Case(
        NOT_RECOGNIZED, f"{MH}/Action", NOT_FOUND, {"service_type": "urn:osb:other"}
    ),
    "24_invalid_action": Case(NOT_RECOGNIZED, f"{MH}/Action", NOT_FOUND, {"action": "unknown"}),
    "25_invalid_ref_to_message_id": Case(
        NOT_RECOGNIZED,
        f"{MH}/MessageData/RefToMessageId",
        NOT_FOUND,
        {"ref_to_message_id": "0a3d2b65-55f4-4d8d-8c2b-7d0e1c9e4f11@peer.test"},
        known=_unknown,
    ),
    "26_time_to_live_expired": Case(
        ErrorCode.TIME_TO_LIVE_EXPIRED,
        f"{MH}/MessageData/TimeToLive",
        validate.TTL_EXPIRED,
        {"time_to_live": stamp(NOW - timedelta(minutes=1))},
    ),
    "27_missing_duplicate_elimination": Case(
        INCONSISTENT, f"{MH}/DuplicateElimination", "Wrong value.", {"duplicate_elimination": False}
    ),
    "28_missing_ack_requested": Case(
        INCONSISTENT, "//Header/AckRequested", "Wrong value.", envelope={"ack_requested": False}
    ),
    "29_invalid_ack_requested_version": Case(
        INCONSISTENT,
        "//Header/AckRequested/@version",
        "Invalid value.",
        edits=(set_attribute(ACK, f"{{{EB_NS}}}version", "3.0"),),
    ),
    "30_next_msh_ack_requested": Case(
        ErrorCode.NOT_SUPPORTED,
        "//Header/AckRequested/@actor",
        "NextMSH not supported.",
        edits=(set_attribute(ACK, f"{{{SOAP_NS}}}actor", "urn:oasis:names:tc:ebxml-msg:actor:nextMSH"),),
    ),
    "31_invalid_ack_requested_actor": Case(
        INCONSISTENT,
        "//Header/AckRequested/@actor",
        "Invalid value.",
        edits=(set_attribute(ACK, f"{{{SOAP_NS}}}actor", "urn:example:someone"),),
    ),
    "32_invalid_ack_requested_signed": Case(
        INCONSISTENT,
        "//Header/AckRequested/@signed",
        "Wrong value.",
        edits=(set_attribute(ACK, f"{{{EB_NS}}}signed", "true"),),
    ),
    "33_missing_sync_reply": Case(
        INCONSISTENT, "//Header/SyncReply", "Wrong value.", envelope={"sync_reply": False}
    ),
    "34_invalid_sync_reply_version": Case(
        INCONSISTENT,
        "//Header/SyncReply/@version",
        "Invalid value.",
        edits=(set_attribute(SYNC, f"{{{EB_NS}}}version", "3.0"),),
    ),
    "35_invalid_sync_reply_actor": Case(
        INCONSISTENT,
        "//Header/SyncReply/@actor",
        "Wrong value.",
        edits=(set_attribute(SYNC, f"{{{SOAP_NS}}}actor", "urn:example:someone"),),
    ),
    "36_message_order": Case(
        ErrorCode.NOT_SUPPORTED,
        "//Header/MessageOrder",
        "MessageOrder not supported.",
        envelope={"header_extra": MESSAGE_ORDER},
    ),
    "38_invalid_manifest_version": Case(
        INCONSISTENT,
        "//Body/Manifest/@version",
        "Invalid value.",
        envelope={"content_ids": (PAYLOAD_CID,)},
        edits=(set_attribute("//eb:Manifest", f"{{{EB_NS}}}version", "3.0"),),
        attachments=(PAYLOAD_CID,),
    ),
    "39_invalid_cid": Case(
        ErrorCode.MIME_PROBLEM,
        "//Body/Manifest/Reference[@href='http://example.org/payload.xml']",
        "URI cannot be resolved.",
        envelope={"content_ids": (PAYLOAD_CID,)},
        edits=(
            set_attribute("//eb:Reference", "{http://www.w3.org/1999/xlink}href", "http://example.org/payload.xml"),
        ),
    ),
    "40_unknown_cid": Case(
        ErrorCode.MIME_PROBLEM, "cid:cid", "MIME part not found.", envelope={"content_ids": ("cid",)}
    ),
    "42_invalid_reference": Case(
        ErrorCode.MIME_PROBLEM,
        "cid:cid",
        "MIME part not found.",
        envelope={"content_ids": (PAYLOAD_CID, "cid")},
        attachments=(PAYLOAD_CID,),
    ),
}


def build(case_header: dict[str, object], case_envelope: dict[str, object], edits: tuple[Edit, ...]) -> bytes:
    options: dict[str, object] = {"sync_reply": True, **case_envelope}
    return edited(peer.envelope(header(**case_header), **options), *edits)  # type: ignore[arg-type]


@pytest.mark.parametrize("rule", list(CASES))
def test_catalogue_message_error(rule: str) -> None:
    case = CASES[rule]
    envelope = build(case.header, case.envelope, case.edits)
    with pytest.raises(EbmsError) as caught:
        receive(envelope, case.attachments, known=case.known)
    error = caught.value
    assert (error.code, error.location, error.description) == (case.code, case.location, case.description)
    assert error.severity == "Error"


def test_catalogue_13_unknown_cpa_id_is_a_soap_fault() -> None:
    with pytest.raises(SoapFaultError) as caught:
        receive(build({"cpa_id": "cpaId"}, {}, ()))
    fault = caught.value
    assert (fault.http_status, fault.faultcode, fault.faultstring, fault.body) == (
        500,
        "Client",
        "CPA cpaId not found!",
        True,
    )


XXE_PING = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE SOAP:Envelope [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>
<SOAP:Envelope xmlns:SOAP="http://schemas.xmlsoap.org/soap/envelope/"><SOAP:Header/>
<SOAP:Body>&xxe;</SOAP:Body></SOAP:Envelope>"""


@pytest.mark.parametrize(
    ("rule", "envelope"),
    [
        ("16_missing_from_party_id", lambda: build({}, {}, (remove("//eb:From/eb:PartyId"),))),
        ("41_missing_reference", lambda: build({}, {"manifest": True}, ())),
        ("43_xxe", lambda: XXE_PING),
    ],
)
def test_catalogue_empty_500(rule: str, envelope: Callable[[], bytes]) -> None:
    with pytest.raises(SoapFaultError) as caught:
        receive(envelope())
    assert (caught.value.http_status, caught.value.body) == (500, False), rule


# --- positive cases --------------------------------------------------------------------------------


def test_catalogue_4_message_is_accepted() -> None:
    message, context = receive(build({}, {}, ()))
    assert message.kind == "business"
    assert [p.value for p in context.our_party.party_ids] == [GEMEENTE]
    assert [p.value for p in context.their_party.party_ids] == [RINIS]
    assert context.sender_binding is not None and context.sender_binding.action == ACTION
    assert context.receiver_binding is not None and context.receiver_binding.action == ACTION
    assert context.sync_reply is True


def test_catalogue_2_ping_is_accepted_on_the_msh_channels() -> None:
    message, context = receive(peer.ping_envelope(agreement().cpa_id, RINIS, GEMEENTE, sync_reply=True))
    assert message.kind == "Ping"
    assert context.sender_binding is None and context.receiver_binding is None


def test_catalogue_5_status_request_is_accepted() -> None:
    ref = "0a3d2b65-55f4-4d8d-8c2b-7d0e1c9e4f11@peer.test"
    message, _ = receive(peer.status_request_envelope(agreement().cpa_id, RINIS, GEMEENTE, ref))
    assert message.kind == "StatusRequest"
    assert message.status_request is not None
    assert message.status_request.ref_to_message_id == ref


def test_catalogue_37_missing_manifest_is_valid() -> None:
    message, _ = receive(build({}, {"manifest": False}, ()))
    assert message.manifest is None


def test_message_with_attachments_resolves_every_cid() -> None:
    cids = (PAYLOAD_CID, "payload-2@peer.test")
    message, _ = receive(build({}, {"content_ids": cids}, ()), cids)
    assert message.manifest is not None
    assert [r.content_id for r in message.manifest.references] == list(cids)


def test_a_known_ref_to_message_id_passes() -> None:
    ref = "0a3d2b65-55f4-4d8d-8c2b-7d0e1c9e4f11@peer.test"
    message, _ = receive(build({"ref_to_message_id": ref}, {}, ()), known=lambda _ref: True)
    assert message.header.ref_to_message_id == ref

