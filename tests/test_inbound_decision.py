"""The inbound decision called directly, one test per outcome kind and per refusal class.

Dictionaries are the stored-message lookups, the clock is fixed, MessageIds come from a sequence
and the security effects are stood in for (tests/decision_support.py); the CPAs are the project's
own osb-rm dev CPAs, with signals in the HTTP response (mshSignalsOnly) or asynchronous.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.ebms.build import build_acknowledgment, build_message_error, content_digest
from ggk_ebms.ebms.model import PartyId
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.errors import EbmsError, ErrorCode, SoapFaultError
from ggk_ebms.lifecycle import Event, Status
from ggk_ebms.mime.related import MimePart
from ggk_ebms.pipeline.inbound_decision import Commit, Fault, InboundOutcome, decide_duplicate
from ggk_ebms.pipeline.records import new_message_from_received
from ggk_ebms.store.messages import StoredMessage
from tests import peer
from tests.decision_support import (
    StandInSecurity,
    decide_on,
    peer_with_oin,
    stored_message,
)
from tests.endpoint import ACTION, GEMEENTE, RINIS, SERVICE, sync_cpa
from tests.outbound_support import make_cpa

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OURS = (GEMEENTE,)
PAYLOAD = MimePart("payload-1@peer.test", "application/xml", b"<Bericht>plaintext</Bericht>")


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@cache
def sync_agreement() -> Agreement:
    return parse_agreement(sync_cpa())


@cache
def async_agreement() -> Agreement:
    return parse_agreement(make_cpa(1, 2, sync_reply=False, version="decision-async")[1])


def business(agreement: Agreement, *, message_id: str = "m-1@peer.test") -> bytes:
    """A Di01 from RINIS; with a SyncReply where the CPA wants signals in the response (catalogue #33)."""
    h = peer.Header(
        agreement.cpa_id,
        RINIS,
        GEMEENTE,
        SERVICE,
        ACTION,
        from_role="GGk",
        to_role="Gemeente",
        message_id=message_id,
        conversation_id="conversation-1",
        timestamp=stamp(NOW),
        time_to_live=stamp(NOW + timedelta(hours=1)),
    )
    sync = agreement is sync_agreement()
    return peer.envelope(h, sync_reply=sync, content_ids=(PAYLOAD.content_id,))


def signal_about(sent_id: str, kind: str, agreement: Agreement) -> bytes:
    """An Acknowledgment or MessageError from RINIS about the message ``sent_id`` we sent."""
    h = peer.Header(agreement.cpa_id, GEMEENTE, RINIS, SERVICE, ACTION, from_role="Gemeente", to_role="GGk")
    h.message_id = sent_id
    ours = parse_envelope(peer.envelope(h), max_bytes=100_000)
    ids, clock = SequenceIdGenerator("rinis.test"), FixedClock(NOW)
    if kind == "Acknowledgment":
        return build_acknowledgment(
            ours, ids=ids, clock=clock, our_party=PartyId(RINIS, "urn:osb:oin")
        ).envelope
    error = EbmsError(ErrorCode.DELIVERY_FAILURE, "", "could not deliver")
    return build_message_error(ours, [error], ids=ids, clock=clock).envelope


def decided(
    envelope: bytes, agreement: Agreement | None = None, **changes: object
) -> tuple[InboundOutcome, StandInSecurity]:
    security = changes.pop("security", None) or StandInSecurity()
    assert isinstance(security, StandInSecurity)
    values: dict[str, object] = {
        "our_party_ids": OURS,
        "now": NOW,
        "peer": peer_with_oin(RINIS),
        "security": security,
    }
    values.update(changes)
    _, _, outcome = decide_on(envelope, agreement or sync_agreement(), **values)  # type: ignore[arg-type]
    return outcome, security


def committed(outcome: InboundOutcome) -> Commit:
    assert isinstance(outcome, Commit), outcome
    return outcome


# -- outcome kinds ------------------------------------------------------------------------------------


def test_ping_is_answered_with_a_pong_at_the_decision_time() -> None:
    envelope = peer.ping_envelope(sync_agreement().cpa_id, RINIS, GEMEENTE, sync_reply=True)
    outcome = committed(decided(envelope)[0])
    assert outcome.response is not None and outcome.response.kind == "Pong"
    pong = parse_envelope(outcome.response.envelope, max_bytes=100_000)
    assert pong.header.ref_to_message_id == outcome.message.message_id
    assert (pong.header.message_id, pong.header.timestamp) == ("id-1@gemeente.test", NOW)
    assert (outcome.message.kind, outcome.message.status) == ("Ping", Status.PROCESSED)
    assert outcome.sync and not outcome.deliver and outcome.effect is None and not outcome.errors
    assert outcome.sign_with is not None  # our MSH signal channel's profile decides the signing


def test_status_request_is_answered_from_the_received_lookup() -> None:
    agreement = sync_agreement()
    received = {
        "asked@peer.test": stored_message(
            "asked@peer.test", direction="in", status=Status.FORWARDED, cpa_id=agreement.cpa_id, at=NOW
        )
    }
    envelope = peer.status_request_envelope(agreement.cpa_id, RINIS, GEMEENTE, "asked@peer.test")
    outcome = committed(decided(envelope, received=received)[0])
    assert outcome.response is not None and outcome.response.kind == "StatusResponse"
    answer = parse_envelope(outcome.response.envelope, max_bytes=100_000).status_response
    assert answer is not None
    assert (answer.ref_to_message_id, answer.status, answer.timestamp) == (
        "asked@peer.test",
        "Forwarded",
        NOW,
    )
    assert outcome.message.status == Status.PROCESSED and not outcome.deliver


def test_business_message_is_delivered_and_acknowledged_in_the_response() -> None:
    outcome, security = decided(business(sync_agreement()), attachments=[PAYLOAD])
    outcome = committed(outcome)
    assert outcome.response is not None and outcome.response.kind == "Acknowledgment"
    assert outcome.sync and outcome.deliver and outcome.effect is None
    assert (outcome.message.kind, outcome.message.status) == ("business", Status.RECEIVED)
    assert [(p.content_id, p.data) for p in outcome.parts] == [(PAYLOAD.content_id, PAYLOAD.data)]
    assert outcome.context is not None and outcome.context.sender_binding is not None
    # Decrypt once, then the security profile of the channel the sender used (docs/signing.md).
    assert security.calls == ["decrypt", f"open:{outcome.context.sender_channel.channel.channel_id}"]


def test_business_message_on_an_async_cpa_gets_its_ack_later() -> None:
    agreement = async_agreement()
    outcome = committed(decided(business(agreement), agreement, attachments=[PAYLOAD])[0])
    assert outcome.response is not None and outcome.response.kind == "Acknowledgment"
    assert not outcome.sync and outcome.deliver


@pytest.mark.parametrize(
    ("kind", "event"), [("Acknowledgment", Event.ACCEPTED), ("MessageError", Event.MESSAGE_ERROR)]
)
def test_signal_about_our_message_carries_its_effect(kind: str, event: Event) -> None:
    agreement = sync_agreement()
    sent = {
        "ours@gemeente.test": stored_message(
            "ours@gemeente.test", direction="out", status=Status.SENDING, cpa_id=agreement.cpa_id, pk=41
        )
    }
    outcome = committed(decided(signal_about("ours@gemeente.test", kind, agreement), sent=sent)[0])
    assert outcome.effect is not None and (outcome.effect.message_pk, outcome.effect.event) == (41, event)
    assert outcome.response is None and not outcome.deliver and not outcome.errors
    assert (outcome.message.kind, outcome.message.status) == (kind, Status.PROCESSED)


def test_signal_about_a_message_we_do_not_know_is_refused_without_an_answer() -> None:
    outcome = committed(decided(signal_about("unknown@gemeente.test", "Acknowledgment", sync_agreement()))[0])
    assert outcome.errors and outcome.errors[0].code == ErrorCode.VALUE_NOT_RECOGNIZED
    # Never an error in answer to an error or an Ack (ebMS 2.0 §4.2.4); stored for the record.
    assert outcome.response is None and outcome.sign_with is None
    assert outcome.message.status == Status.FAILED and outcome.effect is None


def test_the_same_inputs_give_the_same_outcome() -> None:
    first = decided(business(sync_agreement()), attachments=[PAYLOAD])[0]
    second = decided(business(sync_agreement()), attachments=[PAYLOAD])[0]
    assert first == second


# -- refusals -----------------------------------------------------------------------------------------


def test_validation_refusal_is_a_message_error_in_the_response() -> None:
    envelope = business(sync_agreement()).replace(b"<eb:Action>", b"<eb:Action>unknown-")
    outcome = committed(decided(envelope, attachments=[PAYLOAD])[0])
    assert [(e.code, e.location) for e in outcome.errors] == [
        (ErrorCode.VALUE_NOT_RECOGNIZED, "//Header/MessageHeader/Action")
    ]
    assert outcome.response is not None and outcome.response.kind == "MessageError"
    assert outcome.sync and not outcome.deliver and outcome.sign_with is not None
    assert (outcome.message.status, outcome.message.error_code) == (Status.FAILED, "ValueNotRecognized")


def test_security_refusal_is_a_message_error_after_validation() -> None:
    refusal = EbmsError(ErrorCode.SECURITY_FAILURE, "//Header/Signature", "Invalid Signature.")
    outcome = committed(
        decided(business(sync_agreement()), attachments=[PAYLOAD], security=StandInSecurity(refusal))[0]
    )
    assert outcome.errors == (refusal,)
    assert outcome.response is not None and outcome.response.kind == "MessageError"
    assert outcome.message.status == Status.FAILED and not outcome.deliver


@pytest.mark.parametrize("oin", [None, "00000099000009990000"])
def test_client_that_may_not_act_for_the_sender_is_refused_before_anything_is_stored(oin: str | None) -> None:
    security = StandInSecurity()
    outcome, _ = decided(
        business(sync_agreement()), peer=None if oin is None else peer_with_oin(oin), security=security
    )
    assert isinstance(outcome, Fault) and outcome.error.http_status == 403
    assert outcome.error.faultstring.startswith("Invalid TLS client certificate: ")
    assert security.calls == []  # nothing decrypted for a client that is not the sender


@pytest.mark.parametrize(
    ("change", "status", "faultstring", "body"),
    [
        ({"soap_action": "other"}, 500, "Unable to process message! SOAPAction=other", True),
        ({"our_party_ids": ("00000099000009990000",)}, 500, "is not an agreement of this endpoint", True),
    ],
)
def test_refusals_before_the_decision_are_soap_faults(
    change: dict[str, object], status: int, faultstring: str, body: bool
) -> None:
    with pytest.raises(SoapFaultError) as caught:
        decided(business(sync_agreement()), **change)
    assert (caught.value.http_status, caught.value.body) == (status, body)
    assert faultstring in caught.value.faultstring


def test_unknown_cpa_and_unreadable_envelope_are_soap_faults() -> None:
    with pytest.raises(SoapFaultError) as unknown:
        decided(business(sync_agreement()).replace(sync_agreement().cpa_id.encode(), b"cpaId"))
    assert unknown.value.faultstring == "CPA cpaId not found!"
    with pytest.raises(SoapFaultError) as unreadable:
        decided(b"<not-soap/>")
    assert (unreadable.value.http_status, unreadable.value.body) == (500, False)


# -- duplicates ---------------------------------------------------------------------------------------


def _received(envelope: bytes) -> StoredMessage:
    """``envelope`` as the store holds it after a first receipt (pk 5, fingerprint "digest-1")."""
    message = parse_envelope(envelope, max_bytes=100_000)
    record = new_message_from_received(message, "text/xml", "digest-1", status=Status.RECEIVED)
    return StoredMessage(pk=5, created_at=NOW, updated_at=NOW, **record.__dict__)


def test_duplicate_decisions() -> None:
    envelope = business(sync_agreement())
    again = new_message_from_received(
        parse_envelope(envelope, max_bytes=100_000), "text/xml", "digest-1", status=Status.RECEIVED
    )
    stored = _received(envelope)
    nothing: dict[str, StoredMessage] = {}
    by_id = {again.message_id: stored}
    ack_id = "ack-1@gemeente.test"

    def reply(sync: bool) -> dict[str, StoredMessage]:
        signal = stored_message(
            ack_id, direction="out", status=Status.SENT, cpa_id="c", kind="Acknowledgment", pk=9
        )
        return {
            again.message_id: StoredMessage(**{**signal.__dict__, "sync_reply": sync, "envelope": b"<ack/>"})
        }

    other = StoredMessage(**{**stored.__dict__, "content_digest": "digest-2"})
    reused = decide_duplicate(again, find_received={again.message_id: other}.get, find_response=nothing.get)
    assert reused.answer == "fault" and reused.fault is not None and reused.mark is None
    assert reused.fault.faultstring == f"MessageId {again.message_id} already used!"
    assert decide_duplicate(again, find_received=nothing.get, find_response=nothing.get).answer == "fault"
    replay = decide_duplicate(again, find_received=by_id.get, find_response=reply(True).get)
    assert (replay.answer, replay.mark, replay.envelope) == ("replay", 5, b"<ack/>")
    resend = decide_duplicate(again, find_received=by_id.get, find_response=reply(False).get)
    assert (resend.answer, resend.mark, resend.resend) == ("resend", 5, 9)
    silent = decide_duplicate(again, find_received=by_id.get, find_response=nothing.get)
    assert (silent.answer, silent.mark) == ("accepted", 5)
    signal = StoredMessage(
        **{**again.__dict__, "kind": "Acknowledgment", "pk": 5, "created_at": NOW, "updated_at": NOW}
    )
    repeated_ack = decide_duplicate(
        signal,
        find_received={again.message_id: signal}.get,
        find_response=reply(True).get,
    )
    assert (repeated_ack.answer, repeated_ack.mark) == ("accepted", 5)  # signals are not answered again


def test_duplicate_fingerprint_is_over_what_the_decryption_gave() -> None:
    envelope = business(sync_agreement())
    outcome = committed(decided(envelope, attachments=[PAYLOAD])[0])
    expected = content_digest(parse_envelope(envelope, max_bytes=100_000), [PAYLOAD])
    assert outcome.message.content_digest == expected
