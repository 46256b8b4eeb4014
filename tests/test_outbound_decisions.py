"""Pure outbound decisions: what one attempt leads to (KVS ch. 5 HTTP status handling; ebMS 2.0 §6.4, BP ch.
3), how attempts group into ebMS attempts, how signals are retried, and what ``submit_message`` builds from
the CPA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ggk_ebms import lifecycle
from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.cpa.model import Profile
from ggk_ebms.ebms.build import build_acknowledgment, build_message_error
from ggk_ebms.ebms.model import PartyId
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.errors import CpaError, CpaNotFoundError, EbmsError, ErrorCode, TransportError
from ggk_ebms.lifecycle import Event, Flow, Status
from ggk_ebms.pipeline.outbound import (
    TRANSPORT_RETRY_MARK,
    ChannelFacts,
    Slot,
    Verdict,
    business_verdict,
    current_slot,
    expiry_verdict,
    read_response,
    signal_verdict,
    submit_message,
)
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import Attempt, JobQueue
from ggk_ebms.store.messages import MessageStore, NewPart
from ggk_ebms.transport.result import HttpResult
from ggk_ebms.transport.retry import RetryPolicy, SignalKind
from tests.endpoint import GEMEENTE, RINIS
from tests.outbound_support import GEMEENTE_ACTION, SERVICE, make_cpa, side_settings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def outcome_status(verdict: Verdict) -> str | None:
    """The status the verdict's event leads to from Sending (business) or Created (signal), or
    None when the message stays where it is (a retry or a wait for the Acknowledgment)."""
    if verdict.event is None:
        return None
    signal = verdict.event in (Event.SIGNAL_SENT, Event.SIGNAL_GIVEN_UP)
    flow, source = (Flow.SIGNAL, Status.CREATED) if signal else (Flow.OUTBOUND, Status.SENDING)
    target = lifecycle.decide(flow, source, verdict.event).target
    return None if target == source else target


RM = ChannelFacts(reliable=True, sync_reply=False, retries=2, retry_interval=timedelta(minutes=10))
RM_SYNC = ChannelFacts(reliable=True, sync_reply=True, retries=2, retry_interval=timedelta(minutes=10))
BE = ChannelFacts(reliable=False, sync_reply=False, retries=0, retry_interval=None)
TTL = NOW + timedelta(minutes=30)
POLICY = RetryPolicy()


def _http(status: int, body: bytes = b"") -> HttpResult:
    return HttpResult(status, "text/xml" if body else None, body, 0.05, None)


def _connect_error() -> TransportError:
    return TransportError("cannot connect to localhost:8444", retryable=True, layer="connect")


FIRST = Slot(1, NOW, 1)

# (name, outcome, facts, slot, job, due_at, status)
TABLE = [
    ("RM 204 waits for the Ack", _http(204), RM, FIRST, "retry", NOW + timedelta(minutes=10), None),
    ("RM 204 on the last attempt waits until TTL", _http(204), RM, Slot(3, NOW, 1), "retry", TTL, None),
    ("RM 503 retries after RetryInterval", _http(503), RM, FIRST, "retry", NOW + timedelta(minutes=10), None),
    ("RM 408 is recoverable", _http(408), RM, FIRST, "retry", NOW + timedelta(minutes=10), None),
    ("RM 404 fails at once", _http(404), RM, FIRST, "fail", None, "DeliveryFailed"),
    ("RM 501 fails at once", _http(501), RM, FIRST, "fail", None, "DeliveryFailed"),
    ("RM 503 after the last retry waits for TTL", _http(503), RM, Slot(3, NOW, 1), "retry", TTL, None),
    (
        "RM connect failure: quick transport retry",
        _connect_error(),
        RM,
        FIRST,
        "retry",
        NOW + timedelta(seconds=15),
        None,
    ),
    (
        "RM sync: 2xx without Ack retries",
        _http(200),
        RM_SYNC,
        FIRST,
        "retry",
        NOW + timedelta(minutes=10),
        None,
    ),
    ("BE 200 is Delivered", _http(200), BE, FIRST, "complete", None, "Delivered"),
    ("BE 503 fails: no retries, no TTL", _http(503), BE, FIRST, "fail", None, "DeliveryFailed"),
    (
        "BE connect failure: quick retry, nothing was sent",
        _connect_error(),
        BE,
        FIRST,
        "retry",
        NOW + timedelta(seconds=15),
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "outcome", "facts", "slot", "job", "due_at", "status"), TABLE, ids=[r[0] for r in TABLE]
)
def test_business_verdict_table(name, outcome, facts, slot, job, due_at, status) -> None:  # type: ignore[no-untyped-def]
    ttl = TTL if facts.reliable else None
    verdict = business_verdict(
        outcome, None, facts=facts, time_to_live_at=ttl, slot=slot, now=NOW, policy=POLICY
    )
    assert (verdict.job, verdict.due_at, outcome_status(verdict)) == (job, due_at, status), name


def _message_id() -> str:
    return "m-1@gemeente.test"


def _sent_header_message() -> bytes:
    """Our business message as the partner parsed it, to build its signals from."""
    from tests import peer

    h = peer.Header("cpa-1", GEMEENTE, RINIS, SERVICE, GEMEENTE_ACTION, from_role="Gemeente", to_role="GGk")
    h.message_id = _message_id()
    return peer.envelope(h)


def test_sync_acknowledgment_delivers_and_message_error_fails_with_code() -> None:
    ids, clock = SequenceIdGenerator("rinis"), FixedClock(NOW)
    ours = parse_envelope(_sent_header_message(), max_bytes=100_000)
    ack = build_acknowledgment(ours, ids=ids, clock=clock, our_party=PartyId(RINIS, "urn:osb:oin"))
    signal = read_response(_http(200, ack.envelope), _message_id())
    assert signal is not None and signal.kind is SignalKind.ACKNOWLEDGMENT
    verdict = business_verdict(
        _http(200, ack.envelope), signal, facts=RM_SYNC, time_to_live_at=TTL, slot=FIRST, now=NOW
    )
    assert (verdict.job, outcome_status(verdict), verdict.outcome) == ("complete", "Delivered", "ok")

    error = build_message_error(
        ours,
        [EbmsError(ErrorCode.VALUE_NOT_RECOGNIZED, "//Header/MessageHeader/Action", "unknown action")],
        ids=ids,
        clock=clock,
    )
    signal = read_response(_http(200, error.envelope), _message_id())
    assert signal is not None and signal.kind is SignalKind.MESSAGE_ERROR
    verdict = business_verdict(
        _http(200, error.envelope), signal, facts=RM, time_to_live_at=TTL, slot=FIRST, now=NOW
    )
    assert (verdict.job, outcome_status(verdict), verdict.error_code) == (
        "fail",
        "DeliveryFailed",
        "ValueNotRecognized",
    )
    assert verdict.error is not None and "unknown action" in verdict.error


def test_an_ack_for_another_message_does_not_count() -> None:
    ours = parse_envelope(_sent_header_message(), max_bytes=100_000)
    ack = build_acknowledgment(
        ours, ids=SequenceIdGenerator(), clock=FixedClock(NOW), our_party=PartyId(RINIS, "urn:osb:oin")
    )
    signal = read_response(_http(200, ack.envelope), "other@gemeente.test")
    assert signal is not None and signal.kind is SignalKind.OTHER
    verdict = business_verdict(
        _http(200, ack.envelope), signal, facts=RM, time_to_live_at=TTL, slot=FIRST, now=NOW
    )
    assert outcome_status(verdict) is None and verdict.job == "retry"  # still waiting for our own Ack


def test_fault_text_is_kept_but_no_body() -> None:
    fault = (
        b'<SOAP:Envelope xmlns:SOAP="http://schemas.xmlsoap.org/soap/envelope/"><SOAP:Body><SOAP:Fault>'
        b"<faultcode>SOAP:Client</faultcode><faultstring>CPA x not found!</faultstring>"
        b"</SOAP:Fault></SOAP:Body></SOAP:Envelope>"
    )
    verdict = business_verdict(_http(500, fault), None, facts=RM, time_to_live_at=TTL, slot=FIRST, now=NOW)
    assert verdict.job == "retry" and verdict.error is not None
    assert verdict.error.startswith("HTTP 500") and "CPA x not found!" in verdict.error


def test_expiry_before_an_attempt() -> None:
    assert expiry_verdict(None, NOW) is None
    assert expiry_verdict(NOW + timedelta(seconds=1), NOW) is None
    verdict = expiry_verdict(NOW, NOW)
    assert verdict is not None and (verdict.job, outcome_status(verdict)) == ("complete", "Expired")


def _attempt(n: int, minutes: int, error: str | None) -> Attempt:
    at = NOW + timedelta(minutes=minutes)
    return Attempt(n, 1, 1, at, at, "retry", None, error)


def test_slots_group_transport_retries_with_their_ebms_attempt() -> None:
    assert current_slot([], NOW) == Slot(1, NOW, 1)
    quick = "connect: refused" + TRANSPORT_RETRY_MARK
    one_quick = [_attempt(1, 0, quick)]
    assert current_slot(one_quick, NOW) == Slot(1, NOW + timedelta(minutes=0), 2)
    two = [_attempt(1, 0, quick), _attempt(2, 1, "connect: refused")]
    assert current_slot(two, NOW + timedelta(minutes=10)) == Slot(2, NOW + timedelta(minutes=10), 1)
    three = [*two, _attempt(3, 10, quick)]
    assert current_slot(three, NOW + timedelta(minutes=11)) == Slot(2, NOW + timedelta(minutes=10), 2)


@pytest.mark.parametrize(
    ("outcome", "attempt", "job", "status"),
    [
        (_http(204), 1, "complete", "Sent"),
        (_http(200), 3, "complete", "Sent"),
        (_http(503), 1, "retry", None),
        (_connect_error(), 2, "retry", None),
        (_http(503), 3, "fail", "Failed"),
        (_http(403), 1, "fail", "Failed"),
    ],
)
def test_signal_verdict(outcome, attempt: int, job: str, status: str | None) -> None:  # type: ignore[no-untyped-def]
    delays = (timedelta(seconds=5), timedelta(seconds=30))
    verdict = signal_verdict(outcome, attempt=attempt, now=NOW, delays=delays)
    assert (verdict.job, outcome_status(verdict)) == (job, status)
    if job == "retry":
        assert verdict.due_at == NOW + delays[attempt - 1]


# --- submit ---------------------------------------------------------------------------------------


def _database(tmp_path, cpa: bytes) -> tuple[Settings, Database]:  # type: ignore[no-untyped-def]
    settings = side_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa, 0)
    database = Database(settings.database_url)
    database.upgrade()
    assert all("not imported" not in line for line in import_cpa_dir(settings, database))
    return settings, database


def test_submit_builds_the_envelope_once_from_the_cpa(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cpa_id, cpa = make_cpa(8443, 8444, retries=3, retry_interval=timedelta(minutes=5))
    settings, database = _database(tmp_path, cpa)
    clock = FixedClock(datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC))
    try:
        message = submit_message(
            settings,
            database,
            cpa_id=cpa_id,
            service=SERVICE,
            action=GEMEENTE_ACTION,
            parts=[NewPart("p1@test", "application/xml", b"<a/>"), NewPart("p2@test", "text/plain", b"b")],
            ids=SequenceIdGenerator("gemeente.test"),
            clock=clock,
            conversation_id="conv-7",
        )
        assert message.message_id == "id-1@gemeente.test" and message.status == "Created"
        envelope = parse_envelope(message.envelope or b"", max_bytes=100_000)
        header = envelope.header
        assert header.conversation_id == "conv-7" and header.cpa_id == cpa_id
        assert (header.from_party.party_ids[0].value, header.from_party.role) == (GEMEENTE, "Gemeente")
        assert (header.to_party.party_ids[0].value, header.to_party.role) == (RINIS, "GGk")
        assert header.service.type == "urn:osb:services"
        assert header.timestamp == datetime(2026, 6, 1, 12, 0, 0, 123000, tzinfo=UTC)
        assert header.time_to_live == header.timestamp + timedelta(minutes=5) * 4
        assert envelope.ack_requested is not None and header.duplicate_elimination
        assert envelope.sync_reply is None
        assert envelope.manifest is not None
        assert [r.href for r in envelope.manifest.references] == ["cid:p1@test", "cid:p2@test"]
        store = MessageStore(database)
        assert [p.content_id for p in store.parts(message.pk)] == ["p1@test", "p2@test"]
        jobs = JobQueue(database).jobs_for(message.pk)
        assert [(j.queue, j.status, j.due_at) for j in jobs] == [("send", "pending", clock.now())]
    finally:
        database.dispose()


def test_submit_refusals(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cpa_id, cpa = make_cpa(8443, 8444)
    settings, database = _database(tmp_path, cpa)
    common = {"ids": SequenceIdGenerator(), "clock": FixedClock(NOW), "service": SERVICE, "parts": []}
    try:
        with pytest.raises(CpaNotFoundError):
            submit_message(settings, database, cpa_id="nope", action=GEMEENTE_ACTION, **common)  # type: ignore[arg-type]
        with pytest.raises(CpaError, match="no CanSend binding"):
            submit_message(settings, database, cpa_id=cpa_id, action="NoSuchAction", **common)  # type: ignore[arg-type]
        late = dict(common, clock=FixedClock(datetime(2040, 1, 1, tzinfo=UTC)))
        with pytest.raises(CpaError, match="valid from"):
            submit_message(settings, database, cpa_id=cpa_id, action=GEMEENTE_ACTION, **late)  # type: ignore[arg-type]
        assert MessageStore(database).list() == []
    finally:
        database.dispose()


def test_signed_profile_is_stored_signed_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An osb-rm-s channel: the envelope is signed at submit and stored as sent (docs/signing.md), so
    every retry sends the same signed bytes."""
    cpa_id, cpa = make_cpa(8443, 8444, profile=Profile.OSB_RM_S, version="s-t")
    settings, database = _database(tmp_path, cpa)
    try:
        message = submit_message(
            settings,
            database,
            cpa_id=cpa_id,
            service=SERVICE,
            action=GEMEENTE_ACTION,
            parts=[NewPart("p1@test", "application/xml", b"<a/>")],
            ids=SequenceIdGenerator(),
            clock=FixedClock(NOW),
        )
        assert parse_envelope(message.envelope or b"", max_bytes=1_000_000).signature
    finally:
        database.dispose()
