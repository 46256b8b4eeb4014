"""Envelope parser on the project's own messages (no ../shared needed): schema-level refusals
(empty HTTP 500, ebMS 2.0 §4.2.4 and the SOAP 1.1 envelope rules), SOAP mustUnderstand, values,
and fuzzing. tests/test_ebms_parse.py runs the same kinds of checks on the reference templates.

The messages come from the independent test peer (tests/peer.py), which writes envelopes out as
text with the ``SOAP:`` prefix, so the byte edits below name that prefix.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.errors import GgkEbmsError, SoapFaultError
from tests import peer
from tests.endpoint import ACTION, GEMEENTE, RINIS, SERVICE

MAX = 1024 * 1024
CPA_ID = "ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_sync-1"
STAMP = "2026-06-01T12:00:00.000Z"
CID = "payload-1@peer.test"


def _header() -> peer.Header:
    return peer.Header(
        CPA_ID, RINIS, GEMEENTE, SERVICE, ACTION, from_role="GGk", to_role="Gemeente",
        message_id="3d4c2b1a-0000-4000-8000-000000000001@peer.test", timestamp=STAMP,
    )  # fmt: skip


def _message() -> bytes:
    return peer.envelope(_header(), sync_reply=True)


def _with_attachment() -> bytes:
    return peer.envelope(_header(), sync_reply=True, content_ids=(CID,))


def _ping() -> bytes:
    return peer.ping_envelope(CPA_ID, RINIS, GEMEENTE, sync_reply=True)


def _status() -> bytes:
    return peer.status_request_envelope(CPA_ID, RINIS, GEMEENTE, "x@peer.test")


def _refused(envelope: bytes, max_bytes: int = MAX) -> SoapFaultError:
    with pytest.raises(SoapFaultError) as caught:
        parse_envelope(envelope, max_bytes=max_bytes)
    return caught.value


def _without(envelope: bytes, start: bytes, end: bytes) -> bytes:
    i = envelope.index(start)
    return envelope[:i] + envelope[envelope.index(end, i) + len(end) :]


def _edit(envelope: bytes, old: bytes, new: bytes) -> bytes:
    assert old in envelope, old  # the edit must change something, or the test proves nothing
    return envelope.replace(old, new)


def _duplicate_header(message: bytes) -> bytes:
    start = message.index(b"<eb:MessageHeader")
    end = message.index(b"</eb:MessageHeader>") + len(b"</eb:MessageHeader>")
    return message[:end] + message[start:end] + message[end:]


VIOLATIONS = {
    "duplicate-message-header": lambda: _duplicate_header(_message()),
    "no-cpa-id": lambda: _without(_message(), b"<eb:CPAId>", b"</eb:CPAId>"),
    "no-message-id": lambda: _without(_message(), b"<eb:MessageId>", b"</eb:MessageId>"),
    "no-conversation-id": lambda: _without(_message(), b"<eb:ConversationId>", b"</eb:ConversationId>"),
    "empty-action": lambda: _edit(_message(), f"<eb:Action>{ACTION}<".encode(), b"<eb:Action> <"),
    "bad-timestamp": lambda: _edit(_message(), STAMP.encode(), b"yesterday"),
    "no-must-understand": lambda: _edit(
        _message(),
        b'<eb:MessageHeader eb:version="2.0" SOAP:mustUnderstand="1">',
        b'<eb:MessageHeader eb:version="2.0">',
    ),
    "ack-requested-without-signed": lambda: _edit(_message(), b' eb:signed="false"', b""),
    "sync-reply-without-actor": lambda: _edit(
        _message(), b' SOAP:actor="http://schemas.xmlsoap.org/soap/actor/next"', b""
    ),
    "manifest-reference-without-href": lambda: _edit(
        _with_attachment(), f' xlink:href="cid:{CID}"'.encode(), b""
    ),
    "no-body": lambda: _without(_message(), b"<SOAP:Body>", b"</SOAP:Body>"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(VIOLATIONS))
def test_schema_violation_is_an_empty_500(name: str) -> None:
    fault = _refused(VIOLATIONS[name]())
    assert (fault.http_status, fault.body) == (500, False)


@pytest.mark.parametrize("build", [_message, _with_attachment, _ping, _status])
def test_the_unchanged_messages_parse(build: object) -> None:
    assert callable(build)
    assert parse_envelope(build(), max_bytes=MAX).header.cpa_id == CPA_ID


def test_oversized_envelope_is_413() -> None:
    fault = _refused(_message(), max_bytes=100)
    assert (fault.http_status, fault.body) == (413, False)


def test_unknown_mandatory_header_block_is_a_must_understand_fault() -> None:
    envelope = _edit(
        _message(),
        b"</SOAP:Header>",
        b'<x:Security xmlns:x="urn:example:security" SOAP:mustUnderstand="1"/></SOAP:Header>',
    )
    fault = _refused(envelope)
    assert (fault.faultcode, fault.http_status, fault.body) == ("MustUnderstand", 500, True)


def test_unknown_optional_header_block_is_ignored() -> None:
    envelope = _edit(
        _message(),
        b"</SOAP:Header>",
        b'<x:Trace xmlns:x="urn:example:trace" SOAP:mustUnderstand="0"/></SOAP:Header>',
    )
    assert parse_envelope(envelope, max_bytes=MAX).kind == "business"


def test_values_are_read_as_sent() -> None:
    message = parse_envelope(_message(), max_bytes=MAX)
    header = message.header
    assert header.cpa_id == CPA_ID
    assert header.service.value == SERVICE
    assert header.service.type == "urn:osb:services"
    assert header.action == ACTION
    assert header.timestamp == datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert header.duplicate_elimination
    assert message.ack_requested is not None
    assert message.ack_requested.signed is False
    assert message.sync_reply is not None
    assert not message.signature
    assert message.notes == ()


def test_zone_less_timestamp_is_utc_with_a_note() -> None:
    envelope = _edit(_message(), STAMP.encode(), b"2026-06-01T12:00:00")
    message = parse_envelope(envelope, max_bytes=MAX)
    assert message.header.timestamp == datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert message.notes


_BUILDERS = {"message": _message, "attachment": _with_attachment, "ping": _ping, "status": _status}


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(_BUILDERS)),
    cut=st.integers(min_value=0, max_value=4000),
    length=st.integers(min_value=0, max_value=40),
    insert=st.binary(max_size=20)
    | st.sampled_from([b"<", b">", b"&", b'"', b"<eb:Role/>", b"\x00", b"\xff"]),
)
def test_mutated_envelopes_raise_only_soap_faults(name: str, cut: int, length: int, insert: bytes) -> None:
    original = _BUILDERS[name]()
    position = cut % (len(original) + 1)
    mutated = original[:position] + insert + original[position + length :]
    try:
        message = parse_envelope(mutated, max_bytes=MAX)
    except SoapFaultError:
        return  # the parser answers with a Fault
    except GgkEbmsError as exc:  # pragma: no cover - a failure message, not a path
        raise AssertionError(f"not a SOAP Fault: {exc!r}") from exc
    assert message.header.message_id
