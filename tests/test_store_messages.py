"""MessageStore on both databases: one-transaction receive, duplicates, replay, listing, purge."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from ggk_ebms.clock import FixedClock
from ggk_ebms.errors import DuplicateMessageError, StoreError
from ggk_ebms.lifecycle import Event, IllegalTransition
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore, NewMessage, NewPart, ReceiveResult, StoredMessage

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
GEMEENTE = "00000099000003630000"
RINIS = "00000099000001000000"
EBMS_SERVICE = "urn:oasis:names:tc:ebxml-msg:service"


def inbound(message_id: str = "m1@rinis", **changes: object) -> NewMessage:
    base = NewMessage(
        direction="in",
        message_id=message_id,
        cpa_id="cpa-1",
        conversation_id="conv-1",
        from_party_id=RINIS,
        from_party_type="urn:osb:oin",
        from_role="GGK",
        to_party_id=GEMEENTE,
        to_party_type="urn:osb:oin",
        to_role="Gemeente",
        service="urn:osb:services:wmo",
        action="Verzenden",
        kind="business",
        timestamp=T0,
        time_to_live=T0 + timedelta(hours=27),
        status="Received",
        content_digest="ab" * 32,
        envelope=b"<soap:Envelope/>",
        content_type='multipart/related; type="text/xml"; boundary=b',
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def ack_for(message_id: str, ack_id: str = "ack-1@gemeente") -> NewMessage:
    return NewMessage(
        direction="out",
        message_id=ack_id,
        cpa_id="cpa-1",
        conversation_id="conv-1",
        ref_to_message_id=message_id,
        from_party_id=GEMEENTE,
        from_party_type="urn:osb:oin",
        to_party_id=RINIS,
        to_party_type="urn:osb:oin",
        service=EBMS_SERVICE,
        action="Acknowledgment",
        kind="Acknowledgment",
        timestamp=T0,
        status="Created",
        envelope=b"<ack/>",
        content_type="text/xml",
        sync_reply=True,
    )


PARTS = [
    NewPart("<payload-1@gemeente>", "application/xml", b"<Bericht>\xc3\xa9</Bericht>"),
    NewPart("<payload-2@gemeente>", "application/pdf", b"%PDF-1.7\x00\x01"),
]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def store(db: Database, clock: FixedClock) -> MessageStore:
    return MessageStore(db, clock)


@pytest.fixture
def queue(db: Database, clock: FixedClock) -> JobQueue:
    return JobQueue(db, clock)


def test_receive_stores_message_parts_sync_response_and_deliver_job(
    store: MessageStore, queue: JobQueue
) -> None:
    result = store.receive(
        inbound(), PARTS, response=ack_for("m1@rinis"), deliver=True, send_response_async=False
    )
    assert isinstance(result, ReceiveResult)
    stored = store.get(result.message_pk)
    assert stored == StoredMessage(
        **dataclasses.asdict(inbound()), pk=result.message_pk, created_at=T0, updated_at=T0
    )
    parts = store.parts(result.message_pk)
    assert [(p.seq, p.content_id, p.content_type, p.data) for p in parts] == [
        (i, p.content_id, p.content_type, p.data) for i, p in enumerate(PARTS)
    ]
    assert [p.sha256 for p in parts] == [hashlib.sha256(p.data).hexdigest() for p in PARTS]
    assert [p.size for p in parts] == [len(p.data) for p in PARTS]

    assert result.response_pk is not None
    response = store.get(result.response_pk)
    assert (response.direction, response.kind, response.status) == ("out", "Acknowledgment", "Sent")
    assert queue.jobs_for(result.response_pk) == []  # went back in the HTTP response

    [deliver] = queue.jobs_for(result.message_pk)
    assert (deliver.queue, deliver.status, deliver.due_at, deliver.attempts) == ("deliver", "pending", T0, 0)


def test_receive_async_response_gets_a_send_job(store: MessageStore, queue: JobQueue) -> None:
    result = store.receive(
        inbound(), [], response=ack_for("m1@rinis"), deliver=False, send_response_async=True
    )
    assert result.response_pk is not None
    assert store.get(result.response_pk).status == "Created"
    [send] = queue.jobs_for(result.response_pk)
    assert (send.queue, send.status) == ("send", "pending")
    assert queue.jobs_for(result.message_pk) == []
    assert store.parts(result.message_pk) == []


def test_receive_without_response(store: MessageStore) -> None:
    result = store.receive(inbound(), PARTS, response=None, deliver=True, send_response_async=False)
    assert result.response_pk is None
    assert store.count() == 1


def test_receive_is_all_or_nothing(store: MessageStore, queue: JobQueue) -> None:
    # The response's MessageId is taken already: the whole receive must roll back.
    store.receive(
        inbound("first@rinis"), [], response=ack_for("first@rinis"), deliver=False, send_response_async=False
    )
    with pytest.raises(DuplicateMessageError) as caught:
        store.receive(
            inbound("second@rinis"),
            PARTS,
            response=ack_for("second@rinis"),
            deliver=True,
            send_response_async=True,
        )
    assert caught.value.message_id == "ack-1@gemeente"
    assert store.find("in", "second@rinis") is None
    assert store.count() == 2
    assert store.count(direction="in") == 1


def test_duplicate_message_id_is_refused_and_nothing_stored(store: MessageStore, queue: JobQueue) -> None:
    first = store.receive(
        inbound(), PARTS, response=ack_for("m1@rinis"), deliver=True, send_response_async=False
    )
    with pytest.raises(DuplicateMessageError) as caught:
        store.receive(
            inbound(content_digest="cd" * 32),
            PARTS,
            response=ack_for("m1@rinis", "ack-2@gemeente"),
            deliver=True,
            send_response_async=False,
        )
    assert caught.value.existing_pk == first.message_pk
    assert caught.value.message_id == "m1@rinis"
    assert store.find("out", "ack-2@gemeente") is None
    assert len(queue.jobs_for(first.message_pk)) == 1
    assert store.count() == 2


def test_same_message_id_in_both_directions_is_allowed(store: MessageStore) -> None:
    store.receive(inbound("shared@x"), [], response=None, deliver=False, send_response_async=False)
    out = dataclasses.replace(ack_for("other"), message_id="shared@x")
    pk = store.submit(out, [], due_at=T0)
    assert store.find("out", "shared@x") == store.get(pk)


def test_response_to_finds_the_stored_signal_for_replay(store: MessageStore) -> None:
    store.receive(inbound(), [], response=ack_for("m1@rinis"), deliver=True, send_response_async=False)
    replay = store.response_to("m1@rinis", ("Acknowledgment", "MessageError"))
    assert replay is not None
    assert (replay.message_id, replay.timestamp, replay.envelope) == ("ack-1@gemeente", T0, b"<ack/>")
    assert store.response_to("m1@rinis", ("Pong",)) is None
    assert store.response_to("unknown@rinis", ("Acknowledgment",)) is None


def test_find_and_status_of(store: MessageStore) -> None:
    result = store.receive(inbound(), [], response=None, deliver=True, send_response_async=False)
    assert store.status_of("m1@rinis") == "Received"
    store.transition(result.message_pk, Event.FORWARDED)
    assert store.status_of("m1@rinis") == "Forwarded"
    assert store.status_of("never@rinis") is None
    assert store.find("out", "m1@rinis") is None


def test_transition_keeps_reason_and_code(store: MessageStore, clock: FixedClock) -> None:
    pk = store.submit(
        dataclasses.replace(ack_for("x"), kind="business", action="Verzenden"), PARTS, due_at=T0
    )
    clock.advance(timedelta(minutes=5))
    store.transition(pk, Event.MESSAGE_ERROR, reason="MessageError from peer", error_code="DeliveryFailure")
    stored = store.get(pk)
    assert (stored.status, stored.status_reason, stored.error_code) == (
        "DeliveryFailed",
        "MessageError from peer",
        "DeliveryFailure",
    )
    assert stored.updated_at == T0 + timedelta(minutes=5)
    assert stored.created_at == T0
    with pytest.raises(IllegalTransition):
        store.transition(pk, Event.FORWARDED)  # a received message's event, not a sent one's
    with pytest.raises(IllegalTransition):
        store.transition(pk, Event.OPERATOR_RETRY)
    with pytest.raises(StoreError, match="no message"):
        store.transition(pk + 1000, Event.ACCEPTED)
    history = [(h.from_status, h.event, h.to_status) for h in store.history(pk)]
    assert history == [(None, "submitted", "Created"), ("Created", "message-error", "DeliveryFailed")]


def test_submit_stores_outbound_with_send_job(store: MessageStore, queue: JobQueue) -> None:
    due = T0 + timedelta(seconds=30)
    message = dataclasses.replace(
        ack_for("x"), message_id="out-1@gemeente", kind="business", action="Verzenden"
    )
    pk = store.submit(message, PARTS, due_at=due)
    assert store.get(pk).status == "Created"
    assert len(store.parts(pk)) == 2
    [send] = queue.jobs_for(pk)
    assert (send.queue, send.due_at) == ("send", due)
    with pytest.raises(DuplicateMessageError):
        store.submit(message, [], due_at=due)


def test_wrong_direction_is_a_programming_error(store: MessageStore) -> None:
    with pytest.raises(ValueError, match="direction"):
        store.receive(ack_for("x"), [], response=None, deliver=False, send_response_async=False)
    with pytest.raises(ValueError, match="direction"):
        store.submit(inbound(), [], due_at=T0)
    with pytest.raises(ValueError, match="signal"):
        store.receive(
            inbound(),
            [],
            response=dataclasses.replace(ack_for("m1@rinis"), kind="business"),
            deliver=False,
            send_response_async=False,
        )


def test_list_filters_pages_and_leaves_envelopes_out(store: MessageStore) -> None:
    for n in range(5):
        store.receive(
            inbound(f"m{n}@rinis"),
            [],
            response=ack_for(f"m{n}@rinis", f"a{n}@gemeente"),
            deliver=False,
            send_response_async=False,
        )
    newest_first = store.list(direction="in")
    assert [m.message_id for m in newest_first] == [f"m{n}@rinis" for n in reversed(range(5))]
    assert all(m.envelope is None for m in newest_first)
    assert [m.message_id for m in store.list(direction="in", limit=2, offset=1)] == ["m3@rinis", "m2@rinis"]
    assert store.list(kind="Acknowledgment", include_envelope=True)[0].envelope == b"<ack/>"
    assert store.count(kind="Acknowledgment", status="Sent") == 5
    assert store.count(cpa_id="other") == 0
    assert store.list(status="Failed") == []


def test_purge_forgets_old_final_inbound_and_their_signals(
    store: MessageStore, queue: JobQueue, clock: FixedClock
) -> None:
    done = store.receive(
        inbound("done@rinis"),
        PARTS,
        response=ack_for("done@rinis", "a1"),
        deliver=True,
        send_response_async=False,
    )
    [job] = queue.claim("deliver", now=T0, worker_id="w", lease=timedelta(minutes=5))
    queue.complete(job.pk, event=Event.FORWARDED)
    queue.record_attempt(done.message_pk, job_pk=job.pk, started_at=T0, finished_at=T0, outcome="ok")
    waiting = store.receive(
        inbound("waiting@rinis"),
        [],
        response=ack_for("waiting@rinis", "a2"),
        deliver=True,
        send_response_async=False,
    )
    clock.advance(timedelta(days=2))
    young = store.receive(inbound("young@rinis"), [], response=None, deliver=False, send_response_async=False)
    store.transition(young.message_pk, Event.SETTLED)

    assert store.purge(T0 + timedelta(days=1)) == 1

    assert store.find("in", "done@rinis") is None
    assert store.find("out", "a1") is None
    assert store.parts(done.message_pk) == []
    assert queue.attempts(done.message_pk) == []
    assert store.find("in", "waiting@rinis") is not None  # still Received with a pending job
    assert store.find("out", "a2") is not None
    assert store.get(waiting.message_pk).status == "Received"
    assert store.find("in", "young@rinis") is not None  # inside the horizon
    # After the purge the MessageId is free again, as the retention rule intends.
    store.receive(inbound("done@rinis"), [], response=None, deliver=False, send_response_async=False)


def test_resend_requeues_a_stored_async_signal_once(
    store: MessageStore, queue: JobQueue, clock: FixedClock
) -> None:
    result = store.receive(
        inbound(), [], response=ack_for("m1@rinis"), deliver=False, send_response_async=True
    )
    assert result.response_pk is not None
    [first] = queue.claim("send", now=T0, worker_id="w", lease=timedelta(minutes=5))
    queue.complete(first.pk, event=Event.SIGNAL_SENT)

    clock.advance(timedelta(minutes=10))
    job_pk = store.resend(result.response_pk, due_at=clock.now())
    assert store.resend(result.response_pk, due_at=clock.now()) == job_pk  # a second duplicate: same job
    assert store.get(result.response_pk).status == "Created"
    [again] = queue.claim("send", now=clock.now(), worker_id="w", lease=timedelta(minutes=5))
    assert (again.pk, again.message_pk) == (job_pk, result.response_pk)
    # The signal itself is unchanged: same MessageId, Timestamp and bytes (ebMS 2.0 §6.5.3).
    replay = store.get(result.response_pk)
    assert (replay.message_id, replay.timestamp, replay.envelope) == ("ack-1@gemeente", T0, b"<ack/>")
    with pytest.raises(StoreError, match="no outbound message"):
        store.resend(result.message_pk, due_at=clock.now())


def test_list_related_finds_the_signals_about_a_message(store: MessageStore) -> None:
    store.receive(inbound(), [], response=ack_for("m1@rinis"), deliver=False, send_response_async=False)
    status_request = inbound(
        "sr@rinis",
        kind="StatusRequest",
        service=EBMS_SERVICE,
        action="StatusRequest",
        ref_to_message_id="m1@rinis",
        status="Processed",
    )
    store.receive(status_request, [], response=None, deliver=False, send_response_async=False)
    store.receive(
        inbound("other@rinis"),
        [],
        response=ack_for("other@rinis", "ack-other"),
        deliver=False,
        send_response_async=False,
    )
    related = store.list_related("m1@rinis")
    assert [(m.direction, m.kind, m.message_id) for m in related] == [
        ("out", "Acknowledgment", "ack-1@gemeente"),
        ("in", "StatusRequest", "sr@rinis"),
    ]
    assert all(m.envelope is None for m in related)
    assert store.list_related("nobody@rinis") == []
