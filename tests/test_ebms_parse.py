"""Envelope parser: schema-level refusals (empty 500), time values, SOAP rules, and fuzzing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebms_support import render_template
from ggk_ebms.ebms.parse import parse_envelope, parse_xsd_datetime
from ggk_ebms.errors import GgkEbmsError, SoapFaultError

MAX = 1024 * 1024


def _refused(envelope: bytes, max_bytes: int = MAX) -> SoapFaultError:
    with pytest.raises(SoapFaultError) as caught:
        parse_envelope(envelope, max_bytes=max_bytes)
    return caught.value


def _message() -> bytes:
    return render_template("EbMSMessage.xml")


def _without(envelope: bytes, start: bytes, end: bytes) -> bytes:
    """``envelope`` with the first element starting at ``start`` through ``end`` removed."""
    i = envelope.index(start)
    return envelope[:i] + envelope[envelope.index(end, i) + len(end) :]


SCHEMA_VIOLATIONS = {
    "not-xml": b"this is not xml",
    "not-soap": b"<Envelope/>",
    "soap-1.2": b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>',
    "no-body": b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/></s:Envelope>',
    "no-message-header": (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/><s:Body/></s:Envelope>'
    ),
    "duplicate-message-header": None,
    "no-cpa-id": None,
    "empty-action": None,
    "bad-timestamp": None,
    "no-must-understand": None,
    "ack-requested-without-signed": None,
    "sync-reply-without-actor": None,
    "manifest-reference-without-href": None,
    "billion-laughs": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b"<lolz>&lol2;</lolz>"
    ),
}


def _violation(name: str) -> bytes:
    fixed = SCHEMA_VIOLATIONS[name]
    if fixed is not None:
        return fixed
    message = _message()
    if name == "duplicate-message-header":
        header = message[message.index(b"<eb:MessageHeader") : message.index(b"</eb:MessageHeader>") + 19]
        return message.replace(header, header + header)
    if name == "no-cpa-id":
        return _without(message, b"<eb:CPAId>", b"</eb:CPAId>")
    if name == "empty-action":
        return message.replace(b"<eb:Action>afleveren</eb:Action>", b"<eb:Action> </eb:Action>")
    if name == "bad-timestamp":
        return message.replace(b"<eb:Timestamp>2024-06-01T12:00:00.000Z", b"<eb:Timestamp>yesterday")
    if name == "no-must-understand":
        return message.replace(
            b'<eb:MessageHeader eb:version="2.0" soap:mustUnderstand="1">',
            b'<eb:MessageHeader eb:version="2.0">',
        )
    if name == "ack-requested-without-signed":
        return message.replace(b'eb:signed="false" ', b"")
    if name == "sync-reply-without-actor":
        return message.replace(b'soap:actor="http://schemas.xmlsoap.org/soap/actor/next" ', b"")
    if name == "manifest-reference-without-href":
        return render_template("EbMSMessageWithAttachments.xml").replace(
            b'xlink:href="cid:payload-1@localhost" ', b""
        )
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(SCHEMA_VIOLATIONS))
def test_schema_violation_is_an_empty_500(name: str) -> None:
    envelope = _violation(name)
    assert envelope != _message()
    fault = _refused(envelope)
    assert (fault.http_status, fault.body) == (500, False)


def test_oversized_envelope_is_413() -> None:
    fault = _refused(_message(), max_bytes=100)
    assert (fault.http_status, fault.body) == (413, False)


def test_unknown_mandatory_header_block_is_a_must_understand_fault() -> None:
    envelope = _message().replace(
        b"</soap:Header>",
        b'<x:Security xmlns:x="urn:example:security" soap:mustUnderstand="1"/></soap:Header>',
    )
    fault = _refused(envelope)
    assert (fault.faultcode, fault.http_status, fault.body) == ("MustUnderstand", 500, True)


def test_unknown_optional_header_block_is_ignored() -> None:
    envelope = _message().replace(
        b"</soap:Header>", b'<x:Trace xmlns:x="urn:example:trace" soap:mustUnderstand="0"/></soap:Header>'
    )
    assert parse_envelope(envelope, max_bytes=MAX).kind == "business"


def test_values_are_read_as_sent() -> None:
    message = parse_envelope(_message(), max_bytes=MAX)
    header = message.header
    assert header.cpa_id == "cpaStubEBF.rm.http.unsigned.sync"
    assert header.service.value == "osb:afleveren:1.1$1.0"
    assert header.service.type == "urn:osb:services"
    assert header.timestamp == datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert header.duplicate_elimination
    assert message.ack_requested is not None
    assert message.ack_requested.signed is False
    assert message.sync_reply is not None
    assert not message.signature
    assert message.notes == ()


def test_zone_less_timestamp_is_utc_with_a_note() -> None:
    envelope = _message().replace(
        b"2024-06-01T12:00:00.000Z</eb:Timestamp>", b"2024-06-01T12:00:00</eb:Timestamp>"
    )
    message = parse_envelope(envelope, max_bytes=MAX)
    assert message.header.timestamp == datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert message.notes == ("eb:MessageData/eb:Timestamp has no time zone; taken as UTC",)


@pytest.mark.parametrize(
    ("text", "expected", "zoned"),
    [
        ("2024-06-01T12:00:00Z", datetime(2024, 6, 1, 12, tzinfo=UTC), True),
        ("2024-06-01T14:00:00.5+02:00", datetime(2024, 6, 1, 12, 0, 0, 500000, tzinfo=UTC), True),
        ("2024-06-01T12:00:00.123456789-01:30", datetime(2024, 6, 1, 13, 30, 0, 123456, tzinfo=UTC), True),
        ("2024-06-01T12:00:00", datetime(2024, 6, 1, 12, tzinfo=UTC), False),
        ("2024-06-01T24:00:00Z", datetime(2024, 6, 2, tzinfo=UTC), True),
        (" 2024-06-01T12:00:00Z\n", datetime(2024, 6, 1, 12, tzinfo=UTC), True),
    ],
)
def test_xsd_datetime(text: str, expected: datetime, zoned: bool) -> None:
    value, had_zone = parse_xsd_datetime(text)
    assert (value, had_zone) == (expected, zoned)
    assert value.tzinfo == UTC


@pytest.mark.parametrize(
    "text",
    [
        "2024-06-01",
        "2024-06-01 12:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-06-01T24:00:01Z",
        "2024-06-01T12:00:00+15:00",
    ],
)
def test_not_an_xsd_datetime(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_xsd_datetime(text)


@settings(max_examples=200, deadline=None)
@given(
    when=st.datetimes(
        min_value=datetime(1900, 1, 2),
        max_value=datetime(9998, 12, 30),
        timezones=st.just(timezone(timedelta(hours=-5))),
    )
)
def test_xsd_datetime_reads_isoformat(when: datetime) -> None:
    assert parse_xsd_datetime(when.isoformat())[0] == when.astimezone(UTC)


# --- fuzzing: whatever comes in, only errors of the package's own tree come out -------------------------

_TEMPLATE_NAMES = [
    "EbMSMessage.xml",
    "EbMSMessageWithAttachments.xml",
    "EbMSMessageStatus.xml",
    "EbMSPing.xml",
    "EbMSMessageMessageOrder.xml",
]


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(_TEMPLATE_NAMES),
    cut=st.integers(min_value=0, max_value=4000),
    length=st.integers(min_value=0, max_value=40),
    insert=st.binary(max_size=20)
    | st.sampled_from([b"<", b">", b"&", b'"', b"<eb:Role/>", b"\x00", b"\xff"]),
)
def test_mutated_envelopes_raise_only_package_errors(name: str, cut: int, length: int, insert: bytes) -> None:
    original = render_template(name)
    position = cut % (len(original) + 1)
    mutated = original[:position] + insert + original[position + length :]
    refusal: GgkEbmsError | None = None
    try:
        message = parse_envelope(mutated, max_bytes=MAX)
    except GgkEbmsError as exc:
        refusal = exc
    if refusal is None:
        assert message.header.message_id
    else:
        assert isinstance(refusal, SoapFaultError)  # the parser answers with a Fault, never else


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_package_errors(data: bytes) -> None:
    with pytest.raises(GgkEbmsError):
        parse_envelope(data, max_bytes=MAX)
