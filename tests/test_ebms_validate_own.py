"""Receive-side rules on the project's own material (no ../shared needed): the CPA itself
(ebMS 2.0 §8.3 step 2 as docs/ebms.md applies it), PartyId/Role/Service (ebMS 2.0 §3.1.1-§3.1.4),
signals (no Role, the MSH channels), TimeToLive, and Acknowledgments and MessageErrors about a
message we sent (ebMS 2.0 §6.3.2, §4.2). tests/test_ebms_validate.py checks the same rules on the
reference templates.

Messages come from the independent test peer (tests/peer.py) or, for the signals about our own
message, from the endpoint's builders; the CPA is the project's own osb-rm CPA with
syncReplyMode mshSignalsOnly (tests/endpoint.py ``sync_cpa``). We are the gemeente.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.ebms.build import build_acknowledgment, build_business_message, build_message_error
from ggk_ebms.ebms.model import EbmsMessage, PartyId
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.ebms.validate import InboundContext
from ggk_ebms.errors import EbmsError, ErrorCode
from tests import peer
from tests.endpoint import ACTION, GEMEENTE, RINIS, SERVICE, sync_cpa
from tests.validate_support import refusal, validate

MH = "//Header/MessageHeader"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OURS = PartyId(GEMEENTE, "urn:osb:oin")
THEIRS = PartyId(RINIS, "urn:osb:oin")
SENT_ID = "sent-1@gemeente.test"


@cache
def agreement() -> Agreement:
    return parse_agreement(sync_cpa())


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _validate(
    envelope: bytes,
    cpa: Agreement | None = None,
    *,
    our_party_ids: tuple[str, ...] = (GEMEENTE,),
    known: set[str] | None = None,
) -> InboundContext:
    return validate(envelope, cpa or agreement(), our_party_ids=our_party_ids, now=NOW, known=known)


def _error(
    envelope: bytes,
    cpa: Agreement | None = None,
    *,
    our_party_ids: tuple[str, ...] = (GEMEENTE,),
    known: set[str] | None = None,
) -> tuple[str, str, str]:
    return refusal(envelope, cpa or agreement(), our_party_ids=our_party_ids, now=NOW, known=known)


def _edit(envelope: bytes, old: bytes, new: bytes) -> bytes:
    assert old in envelope, old  # an edit that changes nothing would prove nothing
    return envelope.replace(old, new)


def _message(**changes: object) -> bytes:
    h = peer.Header(
        agreement().cpa_id, RINIS, GEMEENTE, SERVICE, ACTION, from_role="GGk", to_role="Gemeente",
        timestamp=stamp(NOW), time_to_live=stamp(NOW + timedelta(hours=1)),
    )  # fmt: skip
    for name, value in changes.items():
        setattr(h, name, value)
    return peer.envelope(h, sync_reply=True)


def _ping(time_to_live: datetime | None = None, *, sync_reply: bool = True) -> bytes:
    envelope = peer.ping_envelope(agreement().cpa_id, RINIS, GEMEENTE, sync_reply=sync_reply)
    if time_to_live is not None:
        ttl = f"<eb:TimeToLive>{stamp(time_to_live)}</eb:TimeToLive>"
        envelope = _edit(envelope, b"</eb:Timestamp>", f"</eb:Timestamp>{ttl}".encode())
    return envelope


# --- the CPA itself -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [{"status": "proposed"}, {"end": NOW - timedelta(days=1)}, {"start": NOW + timedelta(days=1)}],
    ids=["status-proposed", "expired", "not-yet-valid"],
)
def test_unusable_cpa_is_invalid_cpa(change: dict[str, object]) -> None:
    cpa = replace(agreement(), **change)  # type: ignore[arg-type]
    assert _error(_message(), cpa) == (ErrorCode.INCONSISTENT, f"{MH}/@cpaid", "Invalid CPA.")


def test_signed_cpa_is_usable() -> None:
    assert _validate(_message(), replace(agreement(), status="signed")).sync_reply


# --- PartyId, Role, Service ------------------------------------------------------------------------------


def test_untyped_party_id_that_is_no_uri_is_invalid_value() -> None:
    envelope = _edit(_message(), f' eb:type="urn:osb:oin">{RINIS}'.encode(), f">{RINIS}".encode())
    assert _error(envelope) == (ErrorCode.INCONSISTENT, f"{MH}/From/PartyId", "Invalid value.")


def test_untyped_uri_party_id_must_still_be_in_the_cpa() -> None:
    envelope = _edit(_message(), f' eb:type="urn:osb:oin">{RINIS}'.encode(), f">urn:osb:oin:{RINIS}".encode())
    assert _error(envelope) == (ErrorCode.INCONSISTENT, f"{MH}/From/PartyId", "Value not found.")


def test_message_for_the_other_party_is_not_for_us() -> None:
    assert _error(_message(), our_party_ids=(RINIS,)) == (
        ErrorCode.INCONSISTENT,
        f"{MH}/To/PartyId",
        "Value not found.",
    )


def test_missing_to_role_is_invalid_value() -> None:
    assert _error(_message(to_role=None)) == (ErrorCode.INCONSISTENT, f"{MH}/To/Role", "Invalid value.")


def test_untyped_service_that_is_no_uri_is_invalid_value() -> None:
    envelope = _message(service="berichtenverkeer", service_type=None)
    assert _error(envelope) == (ErrorCode.INCONSISTENT, f"{MH}/Service", "Invalid value.")


# --- signals: no Role, the MSH channels ------------------------------------------------------------------


@pytest.mark.parametrize("side", ["From", "To"])
def test_signal_with_role_is_invalid_value(side: str) -> None:
    party = RINIS if side == "From" else GEMEENTE
    envelope = _edit(
        _ping(), f"{party}</eb:PartyId>".encode(), f"{party}</eb:PartyId><eb:Role>GGk</eb:Role>".encode()
    )
    assert _error(envelope) == (ErrorCode.INCONSISTENT, f"{MH}/{side}/Role", "Invalid value.")


def test_unknown_signal_action_is_not_recognized() -> None:
    envelope = _edit(_ping(), b"<eb:Action>Ping</eb:Action>", b"<eb:Action>Pang</eb:Action>")
    assert _error(envelope) == (ErrorCode.VALUE_NOT_RECOGNIZED, f"{MH}/Action", "Value not found.")


def test_ping_without_sync_reply_on_a_sync_msh_channel_is_answered_synchronously() -> None:
    envelope = _ping(sync_reply=False)
    assert b"SyncReply" not in envelope
    assert _validate(envelope).sync_reply is True


def test_ping_expired_time_to_live() -> None:
    assert _error(_ping(NOW - timedelta(seconds=1))) == (
        ErrorCode.TIME_TO_LIVE_EXPIRED,
        f"{MH}/MessageData/TimeToLive",
        "Time to live expired.",
    )


# --- Acknowledgment / MessageError about a message we sent ----------------------------------------------


def _our_sent_message() -> EbmsMessage:
    built = build_business_message(
        cpa_id=agreement().cpa_id,
        from_party=OURS,
        from_role="Gemeente",
        to_party=THEIRS,
        to_role="GGk",
        service=SERVICE,
        service_type="urn:osb:services",
        action=ACTION,
        conversation_id="conv-1",
        message_id=SENT_ID,
        timestamp=NOW,
        time_to_live=NOW + timedelta(minutes=30),
        ack_requested=True,
        ack_signed=False,
        duplicate_elimination=True,
        sync_reply=True,
        content_ids=[],
    )
    return parse_envelope(built.envelope, max_bytes=1024 * 1024)


def _their_ack() -> bytes:
    ack = build_acknowledgment(
        _our_sent_message(), ids=SequenceIdGenerator(), clock=FixedClock(NOW), our_party=THEIRS
    )
    return ack.envelope


def test_acknowledgment_of_our_message_is_valid() -> None:
    context = _validate(_their_ack(), known={SENT_ID})
    assert context.sender_binding is None
    assert context.sender_channel.channel.channel_id == context.msh_signal_channel.channel.channel_id


def test_acknowledgment_of_an_unknown_message_is_not_recognized() -> None:
    assert _error(_their_ack(), known=set()) == (
        ErrorCode.VALUE_NOT_RECOGNIZED,
        f"{MH}/MessageData/RefToMessageId",
        "Value not found.",
    )


def test_acknowledgment_for_next_msh_is_not_supported() -> None:
    envelope = _edit(
        _their_ack(),
        b'SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"',
        b'SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:nextMSH"',
    )
    assert _error(envelope) == (
        ErrorCode.NOT_SUPPORTED,
        "//Header/Acknowledgment/@actor",
        "NextMSH not supported.",
    )


def test_acknowledgment_signal_without_its_block_is_inconsistent() -> None:
    envelope = _their_ack()
    start = envelope.index(b"<eb:Acknowledgment ")
    end = envelope.index(b"</eb:Acknowledgment>") + len(b"</eb:Acknowledgment>")
    assert _error(envelope[:start] + envelope[end:]) == (
        ErrorCode.INCONSISTENT,
        "//Header/Acknowledgment",
        "Value not found.",
    )


def _their_message_error() -> bytes:
    error = EbmsError(ErrorCode.INCONSISTENT, f"{MH}/From/Role", "Invalid value.")
    return build_message_error(
        _our_sent_message(), [error], ids=SequenceIdGenerator(), clock=FixedClock(NOW)
    ).envelope


def test_message_error_about_our_message_is_valid() -> None:
    assert _validate(_their_message_error(), known={SENT_ID}).receiver_binding is None


def test_message_error_without_ref_to_message_id_is_inconsistent() -> None:
    ref = f"<eb:RefToMessageId>{SENT_ID}</eb:RefToMessageId>".encode()
    envelope = _edit(_their_message_error(), ref, b"")
    assert _error(envelope) == (
        ErrorCode.INCONSISTENT,
        f"{MH}/MessageData/RefToMessageId",
        "Invalid value.",
    )
