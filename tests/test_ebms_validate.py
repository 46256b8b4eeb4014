"""Receive-side rules the reference templates do not cover (KVS ch. 5, CPPA 2.0; ebMS 2.0 §3.1, KVS ch. 5;
ebMS 2.0 §6.3, §7-§8; docs/ebms.md catalogue "also build")."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from ebms_support import NOW, OUR_PARTY_IDS, catalogue_agreement, catalogue_values, render_template
from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.ebms.build import build_acknowledgment, build_business_message, build_message_error
from ggk_ebms.ebms.model import EbmsMessage, PartyId
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.ebms.validate import InboundContext
from ggk_ebms.errors import EbmsError, ErrorCode
from tests.validate_support import refusal, validate

MH = "//Header/MessageHeader"
DIGIPOORT = PartyId("00000000000000000000", "urn:osb:oin")
OVERHEID = PartyId("00000000000000000001", "urn:osb:oin")


def _validate(
    envelope: bytes,
    agreement: Agreement | None = None,
    *,
    our_party_ids: tuple[str, ...] = OUR_PARTY_IDS,
    known: set[str] | None = None,
) -> InboundContext:
    return validate(
        envelope, agreement or catalogue_agreement(), our_party_ids=our_party_ids, now=NOW, known=known
    )


def _error(
    envelope: bytes,
    agreement: Agreement | None = None,
    *,
    our_party_ids: tuple[str, ...] = OUR_PARTY_IDS,
    known: set[str] | None = None,
) -> tuple[str, str, str]:
    return refusal(
        envelope, agreement or catalogue_agreement(), our_party_ids=our_party_ids, now=NOW, known=known
    )


def _message() -> bytes:
    return render_template("EbMSMessage.xml")


def _ping() -> bytes:
    return render_template("EbMSPing.xml")


# --- CPPA 2.0; docs/rules.md receive-side check 2: the CPA itself
# ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"status": "proposed"},
        {"end": NOW - timedelta(days=1)},
        {"start": NOW + timedelta(days=1)},
    ],
    ids=["status-proposed", "expired", "not-yet-valid"],
)
def test_step_2_unusable_cpa_is_invalid_cpa(change: dict[str, object]) -> None:
    agreement = replace(catalogue_agreement(), **change)  # type: ignore[arg-type]
    assert _error(_message(), agreement) == (ErrorCode.INCONSISTENT, f"{MH}/@cpaid", "Invalid CPA.")


def test_step_2_signed_cpa_is_usable() -> None:
    assert _validate(_message(), replace(catalogue_agreement(), status="signed")).sync_reply


# --- ebMS 2.0 §3.1, KVS ch. 5 PartyId, Role, Service
# --------------------------------------------------------------------


def test_untyped_party_id_that_is_no_uri_is_invalid_value() -> None:
    envelope = _message().replace(b' eb:type="urn:osb:oin">00000000000000000000', b">00000000000000000000")
    assert _error(envelope) == (ErrorCode.INCONSISTENT, f"{MH}/From/PartyId", "Invalid value.")


def test_untyped_uri_party_id_must_still_be_in_the_cpa() -> None:
    envelope = _message().replace(
        b' eb:type="urn:osb:oin">00000000000000000000', b">urn:osb:oin:00000000000000000000"
    )
    assert _error(envelope) == (ErrorCode.INCONSISTENT, f"{MH}/From/PartyId", "Value not found.")


def test_message_for_the_other_party_is_not_for_us() -> None:
    assert _error(_message(), our_party_ids=("00000000000000000000",)) == (
        ErrorCode.INCONSISTENT,
        f"{MH}/To/PartyId",
        "Value not found.",
    )


def test_missing_to_role_is_invalid_value() -> None:
    envelope = render_template("EbMSMessage.xml").replace(b"<eb:Role>OVERHEID</eb:Role>", b"")
    assert _error(envelope) == (ErrorCode.INCONSISTENT, f"{MH}/To/Role", "Invalid value.")


def test_untyped_service_that_is_no_uri_is_invalid_value() -> None:
    envelope = _message().replace(
        b'<eb:Service eb:type="urn:osb:services">osb:afleveren:1.1$1.0', b"<eb:Service>afleveren"
    )
    assert _error(envelope) == (ErrorCode.INCONSISTENT, f"{MH}/Service", "Invalid value.")


# --- signals (Digikoppeling KVS ch. 5; ebMS 2.0 §7-§8): no Role, MSH channels
# ---------------------------------------------------


@pytest.mark.parametrize("side", ["From", "To"])
def test_signal_with_role_is_invalid_value(side: str) -> None:
    party = b"00000000000000000000" if side == "From" else b"00000000000000000001"
    envelope = _ping().replace(party + b"</eb:PartyId>", party + b"</eb:PartyId><eb:Role>DIGIPOORT</eb:Role>")
    assert _error(envelope) == (ErrorCode.INCONSISTENT, f"{MH}/{side}/Role", "Invalid value.")


def test_unknown_signal_action_is_not_recognized() -> None:
    envelope = _ping().replace(b"<eb:Action>Ping</eb:Action>", b"<eb:Action>Pang</eb:Action>")
    assert _error(envelope) == (ErrorCode.VALUE_NOT_RECOGNIZED, f"{MH}/Action", "Value not found.")


def test_ping_without_sync_reply_on_a_sync_msh_channel_is_answered_synchronously() -> None:
    envelope = _ping().replace(
        b'<eb:SyncReply eb:version="2.0" soap:actor="http://schemas.xmlsoap.org/soap/actor/next" '
        b'soap:mustUnderstand="1"/>',
        b"",
    )
    assert b"SyncReply" not in envelope
    assert _validate(envelope).sync_reply is True


def test_ping_expired_time_to_live() -> None:
    values = replace(catalogue_values(), time_to_live=NOW - timedelta(seconds=1))
    assert _error(render_template("EbMSPing.xml", values)) == (
        ErrorCode.TIME_TO_LIVE_EXPIRED,
        f"{MH}/MessageData/TimeToLive",
        "Time to live expired.",
    )


# --- received Acknowledgment / MessageError about a message we sent (ebMS 2.0 §6.3, §4.2)
# ----------------


def _our_sent_message() -> EbmsMessage:
    built = build_business_message(
        cpa_id="cpaStubEBF.rm.http.unsigned.sync",
        from_party=OVERHEID,
        from_role="OVERHEID",
        to_party=DIGIPOORT,
        to_role="DIGIPOORT",
        service="osb:afleveren:1.1$1.0",
        service_type="urn:osb:services",
        action="bevestigAfleveren",
        conversation_id="conv-1",
        message_id="sent-1@overheid",
        timestamp=NOW,
        time_to_live=NOW + timedelta(minutes=30),
        ack_requested=True,
        ack_signed=False,
        duplicate_elimination=True,
        sync_reply=True,
        content_ids=[],
    )
    return parse_envelope(built.envelope, max_bytes=1024 * 1024)


def test_acknowledgment_of_our_message_is_valid() -> None:
    ack = build_acknowledgment(
        _our_sent_message(), ids=SequenceIdGenerator(), clock=FixedClock(NOW), our_party=DIGIPOORT
    )
    context = _validate(ack.envelope, known={"sent-1@overheid"})
    assert context.sender_binding is None
    assert (
        context.sender_channel.channel.channel_id
        == "DIGIPOORT_defaultDeliveryChannel_ProfileBestEffortSigned"
    )


def test_acknowledgment_of_an_unknown_message_is_not_recognized() -> None:
    ack = build_acknowledgment(
        _our_sent_message(), ids=SequenceIdGenerator(), clock=FixedClock(NOW), our_party=DIGIPOORT
    )
    assert _error(ack.envelope, known=set()) == (
        ErrorCode.VALUE_NOT_RECOGNIZED,
        f"{MH}/MessageData/RefToMessageId",
        "Value not found.",
    )


def test_acknowledgment_for_next_msh_is_not_supported() -> None:
    ack = build_acknowledgment(
        _our_sent_message(), ids=SequenceIdGenerator(), clock=FixedClock(NOW), our_party=DIGIPOORT
    )
    envelope = ack.envelope.replace(
        b'SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"',
        b'SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:nextMSH"',
    )
    assert _error(envelope) == (
        ErrorCode.NOT_SUPPORTED,
        "//Header/Acknowledgment/@actor",
        "NextMSH not supported.",
    )


def test_acknowledgment_signal_without_its_block_is_inconsistent() -> None:
    ack = build_acknowledgment(
        _our_sent_message(), ids=SequenceIdGenerator(), clock=FixedClock(NOW), our_party=DIGIPOORT
    )
    start = ack.envelope.index(b"<eb:Acknowledgment ")
    end = ack.envelope.index(b"</eb:Acknowledgment>") + len(b"</eb:Acknowledgment>")
    envelope = ack.envelope[:start] + ack.envelope[end:]
    assert _error(envelope) == (ErrorCode.INCONSISTENT, "//Header/Acknowledgment", "Value not found.")


def test_message_error_about_our_message_is_valid() -> None:
    error = EbmsError(ErrorCode.INCONSISTENT, f"{MH}/From/Role", "Invalid value.")
    built = build_message_error(
        _our_sent_message(), [error], ids=SequenceIdGenerator(), clock=FixedClock(NOW)
    )
    context = _validate(built.envelope, known={"sent-1@overheid"})
    assert context.receiver_binding is None


def test_message_error_without_ref_to_message_id_is_inconsistent() -> None:
    error = EbmsError(ErrorCode.INCONSISTENT, f"{MH}/From/Role", "Invalid value.")
    built = build_message_error(
        _our_sent_message(), [error], ids=SequenceIdGenerator(), clock=FixedClock(NOW)
    )
    envelope = built.envelope.replace(b"<eb:RefToMessageId>sent-1@overheid</eb:RefToMessageId>", b"")
    assert _error(envelope) == (ErrorCode.INCONSISTENT, f"{MH}/MessageData/RefToMessageId", "Invalid value.")
