"""Group commit of receives (store/group_commit.py, MessageStore.receive) on both databases.

Deterministic, no timing: the first receive is held inside its write (an engine event waits on
an Event), the other threads are released by a barrier and queue behind it; once all of them
wait (polled with a generous deadline), the first is let go and the next leader must write the
whole queue as ONE group. Engine events record every durable point (a COMMIT, or a statement run
in autocommit, which is its own commit) with the thread that caused it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event, exc

from ggk_ebms.clock import FixedClock
from ggk_ebms.errors import DuplicateMessageError, StoreUnavailableError
from ggk_ebms.store.db import Database, in_autocommit
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore, NewPart, ReceiveResult
from tests.test_store_messages import T0, ack_for, inbound

MEMBERS = 6
DEADLINE_S = 30.0
_RECEIVE_INSERT = re.compile(r'INSERT INTO "?message"? ', re.IGNORECASE)
PART = [NewPart("<p@x>", "application/xml", b"<p/>")]


@dataclass
class _Engine:
    """Engine events: the durable points per thread, a gate on the first receive, a fault."""

    hold_first: bool = True
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    durable: list[str] = field(default_factory=list)
    begins: list[str] = field(default_factory=list)
    fail_commit_of: Callable[[str], bool] = lambda _thread: False
    _held: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _listeners(self) -> list[tuple[str, Callable[..., None]]]:
        return [
            ("before_cursor_execute", self._before_execute),
            ("begin", self._begin),
            ("commit", self._commit),
        ]

    def install(self, engine: sa.Engine) -> None:
        for name, listener in self._listeners():
            event.listen(engine, name, listener)

    def remove(self, engine: sa.Engine) -> None:
        for name, listener in self._listeners():
            event.remove(engine, name, listener)

    def _fault(self) -> exc.OperationalError:
        return exc.OperationalError("COMMIT", None, Exception("injected: the commit failed"))

    def _before_execute(self, conn: sa.Connection, _cursor: Any, statement: str, *_rest: Any) -> None:
        thread = threading.current_thread().name
        if self.hold_first and _RECEIVE_INSERT.search(statement):
            with self._lock:
                first, self._held = not self._held, True
            if first:
                self.entered.set()
                assert self.release.wait(DEADLINE_S), "the test never released the first receive"
        if in_autocommit(conn):
            # The one-statement receive on PostgreSQL: this statement is the commit.
            if self.fail_commit_of(thread):
                raise self._fault()
            self.durable.append(thread)

    def _begin(self, _conn: sa.Connection) -> None:
        self.begins.append(threading.current_thread().name)

    def _commit(self, _conn: sa.Connection) -> None:
        thread = threading.current_thread().name
        if self.fail_commit_of(thread):
            raise self._fault()
        self.durable.append(thread)


@pytest.fixture
def watched(db: Database) -> Iterator[tuple[MessageStore, _Engine]]:
    hooks = _Engine()
    hooks.install(db.engine)
    yield MessageStore(db, FixedClock(T0)), hooks
    hooks.remove(db.engine)


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "condition not reached within the deadline"
        time.sleep(0.01)


Outcome = ReceiveResult | BaseException


def _run_group(store: MessageStore, hooks: _Engine, message_ids: list[str]) -> dict[str, Outcome]:
    """Hold a first receive, queue one receive per id behind it, then let them all go."""
    outcomes: dict[str, Outcome] = {}
    barrier = threading.Barrier(len(message_ids) + 1)

    def receive(message_id: str, *, after_barrier: bool) -> None:
        if after_barrier:
            barrier.wait(DEADLINE_S)
        try:
            outcomes[message_id] = store.receive(
                inbound(message_id),
                PART,
                response=ack_for(message_id, f"ack-{message_id}"),
                deliver=True,
                send_response_async=False,
            )
        except BaseException as error:
            outcomes[message_id] = error

    first = threading.Thread(
        target=receive, args=("first@rinis",), kwargs={"after_barrier": False}, name="first"
    )
    first.start()
    assert hooks.entered.wait(DEADLINE_S)
    members = [
        threading.Thread(target=receive, args=(mid,), kwargs={"after_barrier": True}, name=f"member-{i}")
        for i, mid in enumerate(message_ids)
    ]
    for thread in members:
        thread.start()
    barrier.wait(DEADLINE_S)
    _wait_until(lambda: store.receives_waiting == len(message_ids))
    hooks.release.set()
    for thread in [first, *members]:
        thread.join(DEADLINE_S)
        assert not thread.is_alive()
    assert isinstance(outcomes.pop("first@rinis"), ReceiveResult)
    return outcomes


def _member_points(points: list[str]) -> list[str]:
    return [thread for thread in points if thread.startswith("member-")]


def test_concurrent_receives_are_committed_as_one_group(watched: tuple[MessageStore, _Engine]) -> None:
    store, hooks = watched
    ids = [f"g{i}@rinis" for i in range(MEMBERS)]
    outcomes = _run_group(store, hooks, ids)
    # One commit for all members, by whichever member led the group.
    assert len(_member_points(hooks.durable)) == 1
    assert len(_member_points(hooks.begins)) <= 1  # autocommit on PostgreSQL: no BEGIN at all
    pks = set()
    for message_id in ids:
        result = outcomes[message_id]
        assert isinstance(result, ReceiveResult), result
        # Each member gets its own answer: its own message and its own Acknowledgment.
        assert store.get(result.message_pk).message_id == message_id
        assert result.response_pk is not None
        ack = store.get(result.response_pk)
        assert (ack.message_id, ack.ref_to_message_id) == (f"ack-{message_id}", message_id)
        assert [p.data for p in store.parts(result.message_pk)] == [b"<p/>"]
        assert [j.queue for j in JobQueue(store.db).jobs_for(result.message_pk)] == ["deliver"]
        assert [h.to_status for h in store.history(result.message_pk)] == ["Received"]
        pks.update((result.message_pk, result.response_pk))
    assert len(pks) == 2 * MEMBERS


def test_a_duplicate_inside_a_group_fails_alone(watched: tuple[MessageStore, _Engine]) -> None:
    store, hooks = watched
    hooks.hold_first = False
    earlier = store.receive(
        inbound("dup@rinis"), PART, response=None, deliver=False, send_response_async=False
    )
    hooks.hold_first = True
    ids = ["a@rinis", "dup@rinis", "b@rinis", "c@rinis"]
    outcomes = _run_group(store, hooks, ids)
    duplicate = outcomes.pop("dup@rinis")
    assert isinstance(duplicate, DuplicateMessageError)
    assert duplicate.existing_pk == earlier.message_pk
    for message_id, result in outcomes.items():
        assert isinstance(result, ReceiveResult), result
        assert store.get(result.message_pk).message_id == message_id
    # The copy stored nothing: no second Acknowledgment for it.
    assert store.response_to("dup@rinis", {"Acknowledgment"}) is None


def test_a_failed_group_commit_fails_every_member_and_stores_nothing(
    watched: tuple[MessageStore, _Engine],
) -> None:
    store, hooks = watched
    hooks.fail_commit_of = lambda thread: thread.startswith("member-")
    ids = [f"f{i}@rinis" for i in range(MEMBERS)]
    outcomes = _run_group(store, hooks, ids)
    errors = [outcomes[message_id] for message_id in ids]
    assert all(isinstance(error, StoreUnavailableError) for error in errors), errors
    # Every waiting request has its own exception object with the same cause.
    assert len({id(error) for error in errors}) == MEMBERS
    assert len({str(error) for error in errors}) == 1
    hooks.fail_commit_of = lambda _thread: False
    for message_id in ids:
        assert store.find("in", message_id) is None
        assert store.find("out", f"ack-{message_id}") is None
    assert store.count() == 2  # the first receive and its Acknowledgment


def test_a_single_receive_still_commits_at_once(watched: tuple[MessageStore, _Engine]) -> None:
    store, hooks = watched
    hooks.hold_first = False
    result = store.receive(inbound(), PART, response=None, deliver=False, send_response_async=False)
    assert len(hooks.durable) == 1
    assert store.get(result.message_pk).message_id == "m1@rinis"
    with pytest.raises(DuplicateMessageError):
        store.receive(inbound(), PART, response=None, deliver=False, send_response_async=False)
