"""Builders: every envelope we send is valid against the official XSDs and parses back to itself."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from ebms_support import OUR_PARTY_IDS, catalogue_agreement, render_template, schema_errors
from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.ebms.build import (
    BuiltMessage,
    build_acknowledgment,
    build_business_message,
    build_message_error,
    build_ping,
    build_pong,
    build_soap_fault,
    build_status_request,
    build_status_response,
    content_digest,
    error_list_xml,
)
from ggk_ebms.ebms.model import EbmsMessage, PartyId
from ggk_ebms.ebms.parse import parse_envelope, peer_fault
from ggk_ebms.ebms.validate import validate_inbound
from ggk_ebms.errors import EbmsError, ErrorCode, Severity
from ggk_ebms.mime.related import MimePart
from ggk_ebms.ns import ACTOR_TO_PARTY_MSH, DS, EBMS_SERVICE

AT = datetime(2024, 6, 1, 12, 0, 0, 987654, tzinfo=UTC)
GEMEENTE = PartyId("00000099000003630000", "urn:osb:oin")
RINIS = PartyId("00000099000001000000", "urn:osb:oin")


def _parse(built: BuiltMessage) -> EbmsMessage:
    return parse_envelope(built.envelope, max_bytes=1024 * 1024)


def _business(**overrides: object) -> BuiltMessage:
    arguments: dict[str, object] = {
        "cpa_id": "ggk_rinis_0363",
        "from_party": GEMEENTE,
        "from_role": "Gemeente",
        "to_party": RINIS,
        "to_role": "Ggk",
        "service": "osb:ggk:iwmo:3.2",
        "service_type": "urn:osb:services",
        "action": "Wmo315",
        "conversation_id": "conv-1",
        "message_id": "m-1@gemeente.example",
        "timestamp": AT,
        "time_to_live": AT + timedelta(hours=27),
        "ack_requested": True,
        "ack_signed": False,
        "duplicate_elimination": True,
        "sync_reply": False,
        "content_ids": ["payload-1@gemeente.example"],
        "description": "iWmo <315> & co",
    }
    arguments.update(overrides)
    return build_business_message(**arguments)  # type: ignore[arg-type]


@pytest.fixture
def received() -> EbmsMessage:
    return _parse(_business(sync_reply=True))


def _signals(received: EbmsMessage) -> dict[str, BuiltMessage]:
    ids, clock = SequenceIdGenerator(host="rinis.example"), FixedClock(AT)
    status_request = build_status_request(
        "ggk_rinis_0363", GEMEENTE, RINIS, ids=ids, clock=clock, ref_to_message_id="m-0@gemeente.example"
    )
    return {
        "Acknowledgment": build_acknowledgment(received, ids=ids, clock=clock, our_party=RINIS),
        "MessageError": build_message_error(
            received,
            [EbmsError(ErrorCode.INCONSISTENT, "//Header/MessageHeader/From/Role", "Invalid value.")],
            ids=ids,
            clock=clock,
        ),
        "Ping": build_ping("ggk_rinis_0363", GEMEENTE, RINIS, ids=ids, clock=clock, sync_reply=True),
        "Pong": build_pong(received, ids=ids, clock=clock),
        "StatusRequest": status_request,
        "StatusResponse": build_status_response(
            _parse(status_request), status="Received", status_timestamp=AT, ids=ids, clock=clock
        ),
    }


def test_business_message_is_schema_valid_and_round_trips() -> None:
    built = _business()
    assert schema_errors(built.envelope) == []
    message = _parse(built)
    assert message.header == built.header
    assert message.kind == built.kind == "business"
    assert message.ack_requested is not None
    assert (message.ack_requested.actor, message.ack_requested.signed) == (ACTOR_TO_PARTY_MSH, False)
    assert message.sync_reply is None
    assert message.manifest is not None
    assert [r.href for r in message.manifest.references] == ["cid:payload-1@gemeente.example"]
    assert built.header.timestamp == AT.replace(microsecond=987000)  # what is written: milliseconds


def test_best_effort_message_carries_no_rm_blocks_and_no_manifest_without_parts() -> None:
    built = _business(ack_requested=False, duplicate_elimination=False, content_ids=[], time_to_live=None)
    assert schema_errors(built.envelope) == []
    message = _parse(built)
    assert message.ack_requested is None
    assert message.manifest is None
    assert not message.header.duplicate_elimination
    assert b"TimeToLive" not in built.envelope


@pytest.mark.parametrize(
    "kind", ["Acknowledgment", "MessageError", "Ping", "Pong", "StatusRequest", "StatusResponse"]
)
def test_signal_is_schema_valid_and_round_trips(received: EbmsMessage, kind: str) -> None:
    built = _signals(received)[kind]
    assert schema_errors(built.envelope) == []
    message = _parse(built)
    assert message.kind == built.kind == kind
    assert message.header == built.header
    # Digikoppeling KVS ch. 5: signals have the signal
    # service and no Role, DuplicateElimination or TimeToLive.
    assert message.header.service.value == EBMS_SERVICE
    assert message.header.from_party.role is None
    assert message.header.to_party.role is None
    assert not message.header.duplicate_elimination
    assert message.header.time_to_live is None


def test_acknowledgment_follows_digest_4_1(received: EbmsMessage) -> None:
    ack = _parse(_signals(received)["Acknowledgment"])
    header = ack.header
    assert header.from_party.party_ids == (RINIS,)
    assert header.to_party.party_ids == received.header.from_party.party_ids
    assert (header.cpa_id, header.conversation_id) == (
        received.header.cpa_id,
        received.header.conversation_id,
    )
    assert header.ref_to_message_id == received.header.message_id
    assert header.message_id != received.header.message_id
    assert ack.acknowledgment is not None
    assert ack.acknowledgment.actor == ACTOR_TO_PARTY_MSH
    assert ack.acknowledgment.ref_to_message_id == received.header.message_id
    assert ack.acknowledgment.from_party is not None
    assert ack.acknowledgment.from_party.party_ids == (RINIS,)
    assert ack.acknowledgment.timestamp == header.timestamp


def test_signed_acknowledgment_echoes_the_references(received: EbmsMessage) -> None:
    reference = (
        f'<ds:Reference xmlns:ds="{DS}" URI="cid:payload-1@gemeente.example">'
        f'<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        "<ds:DigestValue>q1w2e3r4</ds:DigestValue></ds:Reference>"
    ).encode()
    element = etree.fromstring(reference.replace(b"payload-1", b"payload-2"))
    built = build_acknowledgment(
        received,
        ids=SequenceIdGenerator(),
        clock=FixedClock(AT),
        our_party=RINIS,
        references=[reference, element],
    )
    assert schema_errors(built.envelope) == []
    ack = _parse(built).acknowledgment
    assert ack is not None
    assert [(r.uri, r.digest_value) for r in ack.references] == [
        ("cid:payload-1@gemeente.example", "q1w2e3r4"),
        ("cid:payload-2@gemeente.example", "q1w2e3r4"),
    ]
    assert element.getparent() is None  # the caller's element is copied, not moved


def test_message_error_follows_digest_6(received: EbmsMessage) -> None:
    error = _parse(_signals(received)["MessageError"])
    assert error.header.from_party.party_ids == received.header.to_party.party_ids
    assert error.header.to_party.party_ids == received.header.from_party.party_ids
    assert error.header.ref_to_message_id == received.header.message_id
    assert error.error_list is not None
    assert error.error_list.highest_severity == "Error"
    (entry,) = error.error_list.errors
    assert (entry.code, entry.severity, entry.location, entry.description, entry.code_context) == (
        "Inconsistent",
        "Error",
        "//Header/MessageHeader/From/Role",
        "Invalid value.",
        "urn:oasis:names:tc:ebxml-msg:service:errors",
    )
    assert error.manifest is None


def test_message_error_of_warnings_only_has_highest_severity_warning(received: EbmsMessage) -> None:
    warning = EbmsError(ErrorCode.UNKNOWN, "//Header", "Note.", severity=Severity.WARNING)
    built = build_message_error(received, [warning], ids=SequenceIdGenerator(), clock=FixedClock(AT))
    parsed = _parse(built).error_list
    assert parsed is not None
    assert parsed.highest_severity == "Warning"


def test_pong_and_status_response_follow_digest_5(received: EbmsMessage) -> None:
    signals = _signals(received)
    pong = _parse(signals["Pong"])
    assert pong.header.ref_to_message_id == received.header.message_id
    assert pong.header.conversation_id == received.header.conversation_id
    assert pong.header.from_party.party_ids == received.header.to_party.party_ids
    response = _parse(signals["StatusResponse"]).status_response
    assert response is not None
    assert (response.ref_to_message_id, response.status) == ("m-0@gemeente.example", "Received")
    assert response.timestamp == AT.replace(microsecond=987000)


def test_builders_refuse_programming_errors(received: EbmsMessage) -> None:
    ids, clock = SequenceIdGenerator(), FixedClock(AT)
    with pytest.raises(ValueError, match="StatusRequest"):
        build_status_response(received, status="Received", status_timestamp=None, ids=ids, clock=clock)
    request = _parse(_signals(received)["StatusRequest"])
    with pytest.raises(ValueError, match="Lost"):
        build_status_response(request, status="Lost", status_timestamp=None, ids=ids, clock=clock)
    with pytest.raises(ValueError, match="at least one"):
        build_message_error(received, [], ids=ids, clock=clock)
    with pytest.raises(ValueError, match="fault code"):
        build_soap_fault("Sender", "x")


def test_pong_answers_the_reference_ping_and_passes_validation_on_the_other_side() -> None:
    """The Pong to the catalogue's Ping (#2) is itself a valid inbound message for the pinger."""
    ping = parse_envelope(render_template("EbMSPing.xml"), max_bytes=1024 * 1024)
    pong = build_pong(ping, ids=SequenceIdGenerator(), clock=FixedClock(AT))
    assert schema_errors(pong.envelope) == []
    parsed = _parse(pong)
    context = validate_inbound(
        parsed,
        catalogue_agreement(),
        our_party_ids=["00000000000000000000"],
        now=AT,
        attachment_ids=[],
        known_message_ids={ping.header.message_id}.__contains__,
    )
    assert [p.value for p in context.their_party.party_ids] == list(OUR_PARTY_IDS)


def test_soap_fault_is_schema_valid_and_recognised_by_peer_fault() -> None:
    error = EbmsError(ErrorCode.SECURITY_FAILURE, "//Header/Signature", "Signature not found.")
    envelope = build_soap_fault(
        "Client", "Unable to process message! \x07bell", detail=error_list_xml([error])
    )
    assert schema_errors(envelope) == []
    fault = peer_fault(envelope)
    assert fault is not None
    assert (fault.faultcode, fault.faultstring) == ("Client", "Unable to process message! ?bell")
    assert fault.detail is not None
    assert b"Signature not found." in fault.detail


def test_peer_fault_is_none_for_an_ebms_answer(received: EbmsMessage) -> None:
    assert peer_fault(_signals(received)["Acknowledgment"].envelope) is None
    assert peer_fault(b"not xml with Fault in it") is None


def test_content_digest_counts_identity_and_payload_only(received: EbmsMessage) -> None:
    parts = [MimePart("payload-1@gemeente.example", "application/xml", b"<a/>")]
    digest = content_digest(received, parts)
    later = EbmsMessage(header=received.header, ack_requested=None, signature=True)
    assert content_digest(later, parts) == digest  # no AckRequested, a signature: same content
    moved = replace(received.header, timestamp=AT + timedelta(hours=1))
    assert content_digest(EbmsMessage(header=moved), parts) == digest  # a retry has a new Timestamp
    other_payload = [MimePart("payload-1@gemeente.example", "application/xml", b"<b/>")]
    assert content_digest(received, other_payload) != digest
    other_action = replace(received.header, action="Wmo316")
    assert content_digest(EbmsMessage(header=other_action), parts) != digest


def test_peer_fault_reads_qualified_fault_children_too() -> None:
    envelope = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
        b"<s:faultcode>s:Server</s:faultcode><s:faultstring>busy</s:faultstring>"
        b"</s:Fault></s:Body></s:Envelope>"
    )
    fault = peer_fault(envelope)
    assert fault is not None
    assert (fault.faultcode, fault.faultstring, fault.detail) == ("Server", "busy", None)
