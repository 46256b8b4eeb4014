"""The inbound signal decisions called directly, with dictionaries as their lookups."""

from __future__ import annotations

from datetime import UTC, datetime

from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.ebms.build import build_acknowledgment, build_message_error
from ggk_ebms.ebms.model import PartyId
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.errors import EbmsError, ErrorCode
from ggk_ebms.lifecycle import Event, Status
from ggk_ebms.pipeline.signal_decisions import signal_effect, status_of
from ggk_ebms.store.messages import StoredMessage
from tests import peer
from tests.endpoint import GEMEENTE, RINIS, SERVICE

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OURS = "m-1@gemeente.test"


def _stored(message_id: str, *, direction: str, status: str, cpa_id: str = "cpa-1") -> StoredMessage:
    return StoredMessage(
        pk=7,
        direction=direction,
        message_id=message_id,
        cpa_id=cpa_id,
        conversation_id="c-1",
        from_party_id=GEMEENTE,
        to_party_id=RINIS,
        service=SERVICE,
        action="envelopHeenbericht-ggk_Di01",
        kind="business",
        timestamp=T0,
        status=status,
        created_at=T0,
        updated_at=T0,
    )


def _signals() -> tuple[bytes, bytes]:
    h = peer.Header("cpa-1", GEMEENTE, RINIS, SERVICE, "envelopHeenbericht-ggk_Di01")
    h.message_id = OURS
    ours = parse_envelope(peer.envelope(h), max_bytes=100_000)
    ids, clock = SequenceIdGenerator("rinis"), FixedClock(T0)
    ack = build_acknowledgment(ours, ids=ids, clock=clock, our_party=PartyId(RINIS, "urn:osb:oin"))
    error = build_message_error(
        ours, [EbmsError(ErrorCode.DELIVERY_FAILURE, "", "could not deliver")], ids=ids, clock=clock
    )
    return ack.envelope, error.envelope


def test_acknowledgment_and_message_error_about_our_message() -> None:
    ack, error = (parse_envelope(e, max_bytes=100_000) for e in _signals())
    sent = {OURS: _stored(OURS, direction="out", status=Status.SENDING)}
    effect = signal_effect(ack, find_sent=sent.get)
    assert effect is not None and (effect.message_pk, effect.event) == (7, Event.ACCEPTED)
    effect = signal_effect(error, find_sent=sent.get)
    assert effect is not None and (effect.event, effect.code) == (Event.MESSAGE_ERROR, "DeliveryFailure")
    assert effect.reason == "could not deliver"


def test_signals_about_unknown_or_foreign_messages_change_nothing() -> None:
    ack, _ = (parse_envelope(e, max_bytes=100_000) for e in _signals())
    assert signal_effect(ack, find_sent={}.get) is None
    other_cpa = {OURS: _stored(OURS, direction="out", status=Status.SENDING, cpa_id="cpa-2")}
    assert signal_effect(ack, find_sent=other_cpa.get) is None


def test_status_of_a_received_message() -> None:
    received = {
        "a@peer": _stored("a@peer", direction="in", status=Status.FORWARDED),
        "b@peer": _stored("b@peer", direction="in", status=Status.FAILED),
        "c@peer": _stored("c@peer", direction="in", status=Status.RECEIVED, cpa_id="cpa-2"),
    }
    assert status_of("a@peer", "cpa-1", find_received=received.get) == ("Forwarded", T0)
    assert status_of("b@peer", "cpa-1", find_received=received.get) == ("Received", T0)
    assert status_of("c@peer", "cpa-1", find_received=received.get) == ("UnAuthorized", None)
    assert status_of("x@peer", "cpa-1", find_received=received.get) == ("NotRecognized", None)
