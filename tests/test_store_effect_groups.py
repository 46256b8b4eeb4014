"""Received signals with an effect on a sent message, committed as a group (both databases).

An asynchronous Acknowledgment or MessageError is stored and applied to the message we sent in
one transaction (MessageStore.receive ``effect=``); concurrent ones now share the group commit
of every other receive (store/group_commit.py), their effects applied in one batch step. The
groups are formed deterministically, as in tests/test_store_group_commit.py: the first receive is
held inside its write until all the others wait behind it, and engine events count the commits.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from ggk_ebms.clock import FixedClock
from ggk_ebms.errors import StoreError
from ggk_ebms.lifecycle import Event, Status
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore, NewMessage, ReceiveResult, SignalEffect, StoredMessage
from tests.test_store_group_commit import DEADLINE_S, _Engine, _member_points, _wait_until
from tests.test_store_messages import EBMS_SERVICE, T0, inbound

Outcome = ReceiveResult | BaseException


@pytest.fixture
def watched(db: Database) -> Iterator[tuple[MessageStore, _Engine]]:
    hooks = _Engine(hold_first=False)
    hooks.install(db.engine)
    yield MessageStore(db, FixedClock(T0)), hooks
    hooks.remove(db.engine)


def _sent(store: MessageStore, message_id: str, *, sending: bool = True) -> StoredMessage:
    """A business message we sent, its send job pending (a retry at RetryInterval)."""
    out = dataclasses.replace(inbound(message_id), direction="out", status=Status.CREATED)
    pk = store.submit(out, [], due_at=T0)
    if sending:
        store.transition(pk, Event.ATTEMPT_STARTED, "attempt 1 started")
    return store.get(pk)


def _signal(message_id: str, ref: str, kind: str = "Acknowledgment") -> NewMessage:
    return NewMessage(
        direction="in",
        message_id=message_id,
        cpa_id="cpa-1",
        conversation_id="conv-1",
        ref_to_message_id=ref,
        from_party_id="rinis",
        to_party_id="gemeente",
        service=EBMS_SERVICE,
        action=kind,
        kind=kind,
        timestamp=T0,
        status=Status.PROCESSED,
    )


def _ack_effect(pk: int) -> SignalEffect:
    return SignalEffect(pk, Event.ACCEPTED, "Acknowledgment received")


def _run_group(
    store: MessageStore, hooks: _Engine, members: dict[str, tuple[NewMessage, SignalEffect | None]]
) -> dict[str, Outcome]:
    """Hold a first receive (a business message), queue the members behind it, let them all go."""
    outcomes: dict[str, Outcome] = {}
    barrier = threading.Barrier(len(members) + 1)

    def receive(name: str, message: NewMessage, effect: SignalEffect | None, *, wait: bool) -> None:
        if wait:
            barrier.wait(DEADLINE_S)
        try:
            outcomes[name] = store.receive(
                message, [], response=None, deliver=False, send_response_async=False, effect=effect
            )
        except BaseException as error:
            outcomes[name] = error

    hooks.hold_first = True
    first = threading.Thread(
        target=receive, args=("first", inbound("first@rinis"), None), kwargs={"wait": False}, name="first"
    )
    first.start()
    assert hooks.entered.wait(DEADLINE_S)
    threads = [
        threading.Thread(
            target=receive, args=(name, message, effect), kwargs={"wait": True}, name=f"member-{i}"
        )
        for i, (name, (message, effect)) in enumerate(members.items())
    ]
    for thread in threads:
        thread.start()
    barrier.wait(DEADLINE_S)
    _wait_until(lambda: store.receives_waiting == len(members))
    hooks.release.set()
    for thread in [first, *threads]:
        thread.join(DEADLINE_S)
        assert not thread.is_alive()
    assert isinstance(outcomes.pop("first"), ReceiveResult)
    return outcomes


def _send_jobs(store: MessageStore, pk: int) -> list[str]:
    return [j.status for j in JobQueue(store.db).jobs_for(pk) if j.queue == "send"]


def test_acknowledgments_with_effects_are_one_group_and_one_commit(
    watched: tuple[MessageStore, _Engine],
) -> None:
    store, hooks = watched
    sent = [_sent(store, f"out-{i}@gemeente") for i in range(5)]
    members = {
        f"ack-{i}": (_signal(f"ack-{i}@rinis", s.message_id), _ack_effect(s.pk)) for i, s in enumerate(sent)
    }
    outcomes = _run_group(store, hooks, members)
    assert len(_member_points(hooks.durable)) == 1  # one commit for every Ack and its effect
    for i, s in enumerate(sent):
        result = outcomes[f"ack-{i}"]
        assert isinstance(result, ReceiveResult), result
        assert store.get(result.message_pk).ref_to_message_id == s.message_id
        now = store.get(s.pk)
        assert (now.status, now.status_reason) == (Status.DELIVERED, "Acknowledgment received")
        assert _send_jobs(store, s.pk) == ["done"]  # the retry has nothing left to do
        assert [h.to_status for h in store.history(s.pk)] == ["Created", "Sending", "Delivered"]


def test_unknown_repeated_and_error_signals_share_a_group_with_valid_ones(
    watched: tuple[MessageStore, _Engine],
) -> None:
    store, hooks = watched
    valid, acknowledged, refused, created = (
        _sent(store, "valid@gemeente"),
        _sent(store, "acked@gemeente"),
        _sent(store, "refused@gemeente"),
        _sent(store, "created@gemeente", sending=False),
    )
    store.transition(acknowledged.pk, Event.ACCEPTED, "Acknowledgment received")
    members = {
        "valid": (_signal("a1@rinis", valid.message_id), _ack_effect(valid.pk)),
        # An Acknowledgment about no message of ours: the decision gives no effect.
        "unknown": (_signal("a2@rinis", "nobody@gemeente"), None),
        # A second Acknowledgment for a message that is Delivered already: kept final.
        "again": (_signal("a3@rinis", acknowledged.message_id), _ack_effect(acknowledged.pk)),
        "error": (
            _signal("e1@rinis", refused.message_id, "MessageError"),
            SignalEffect(refused.pk, Event.MESSAGE_ERROR, "ValueNotRecognized", "ValueNotRecognized"),
        ),
        # Two signals about one message in one group: applied one after the other.
        "first-of-two": (_signal("a4@rinis", created.message_id), _ack_effect(created.pk)),
        "second-of-two": (
            _signal("e2@rinis", created.message_id, "MessageError"),
            SignalEffect(created.pk, Event.MESSAGE_ERROR, "late", "Unknown"),
        ),
    }
    outcomes = _run_group(store, hooks, members)
    assert len(_member_points(hooks.durable)) == 1
    assert all(isinstance(result, ReceiveResult) for result in outcomes.values()), outcomes
    assert store.get(valid.pk).status == Status.DELIVERED
    assert store.get(acknowledged.pk).status == Status.DELIVERED
    assert [h.to_status for h in store.history(acknowledged.pk)][-2:] == ["Delivered", "Delivered"]
    failed = store.get(refused.pk)
    assert (failed.status, failed.error_code) == (Status.DELIVERY_FAILED, "ValueNotRecognized")
    assert _send_jobs(store, refused.pk) == ["done"]
    # Whichever of the two queued first decides; the other is recorded and kept out.
    final = store.get(created.pk).status
    assert final in (Status.DELIVERED, Status.DELIVERY_FAILED)
    assert [h.to_status for h in store.history(created.pk)] == ["Created", final, final]
    assert store.find("in", "a2@rinis") is not None  # stored all the same, without an effect


def test_an_effect_on_a_message_that_is_gone_fails_alone(watched: tuple[MessageStore, _Engine]) -> None:
    store, hooks = watched
    sent = [_sent(store, f"kept-{i}@gemeente") for i in range(3)]
    members = {
        f"ack-{i}": (_signal(f"k{i}@rinis", s.message_id), _ack_effect(s.pk)) for i, s in enumerate(sent)
    }
    members["gone"] = (_signal("g@rinis", "gone@gemeente"), _ack_effect(10**9))
    outcomes = _run_group(store, hooks, members)
    gone = outcomes.pop("gone")
    assert isinstance(gone, StoreError) and "no message with pk" in str(gone)
    assert store.find("in", "g@rinis") is None  # the signal and its effect: both or neither
    for i, s in enumerate(sent):
        assert isinstance(outcomes[f"ack-{i}"], ReceiveResult)
        assert store.get(s.pk).status == Status.DELIVERED


def test_a_single_receive_with_an_effect_commits_alone(watched: tuple[MessageStore, _Engine]) -> None:
    store, hooks = watched
    sent = _sent(store, "one@gemeente")
    hooks.durable.clear()
    store.receive(
        _signal("one-ack@rinis", sent.message_id),
        [],
        response=None,
        deliver=False,
        send_response_async=False,
        effect=_ack_effect(sent.pk),
    )
    assert len(hooks.durable) == 1
    assert store.get(sent.pk).status == Status.DELIVERED
    with pytest.raises(StoreError, match="no message with pk"):
        store.receive(
            _signal("lost-ack@rinis", "x"),
            [],
            response=None,
            deliver=False,
            send_response_async=False,
            effect=_ack_effect(10**9),
        )
    assert store.find("in", "lost-ack@rinis") is None


def test_batch_steps_with_shared_values_update_without_case(db: Database) -> None:
    """transition_many: messages whose step writes the same values are updated by one plain
    UPDATE (a statement SQLAlchemy compiles once); different values still each reach their own."""
    from ggk_ebms.store import lifecycle as steps

    store = MessageStore(db, FixedClock(T0))
    same = [_sent(store, f"same-{i}@gemeente", sending=False) for i in range(3)]
    other = [_sent(store, f"other-{i}@gemeente", sending=False) for i in range(2)]
    updates: list[str] = []

    def before(_conn: sa.Connection, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        with db.session() as session:
            steps.transition_many(
                session,
                [steps.Change(s.pk, Event.ATTEMPT_STARTED, "attempt 1 started") for s in same],
                now=T0,
            )
        assert len(updates) == 1 and "CASE" not in updates[0].upper()
        updates.clear()
        with db.session() as session:
            steps.transition_many(
                session,
                [
                    steps.Change(s.pk, Event.ATTEMPT_STARTED, f"attempt {i} started")
                    for i, s in enumerate(other)
                ],
                now=T0,
            )
        assert len(updates) == 1 and "CASE" in updates[0].upper()
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
    for s in same:
        assert (store.get(s.pk).status, store.get(s.pk).status_reason) == (
            Status.SENDING,
            "attempt 1 started",
        )
    for i, s in enumerate(other):
        assert (store.get(s.pk).status, store.get(s.pk).status_reason) == (
            Status.SENDING,
            f"attempt {i} started",
        )
