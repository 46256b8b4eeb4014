"""``SendStore.finish``: a group of attempt outcomes written whole, on SQLite and PostgreSQL.

PostgreSQL writes it as the decision's SELECT and one statement (store/finish_pg.py), SQLite
statement by statement (store/jobs.py ``finish_many``); both must leave the same rows: each
message's step and history, each job's end, the attempts, and the synchronous signals kept once
(a replayed one skipped). A message moved between decision and write is in test_lifecycle_race.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ggk_ebms.clock import SystemClock
from ggk_ebms.lifecycle import Event
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import Job, JobQueue, NewAttempt, Outcome
from ggk_ebms.store.messages import MessageStore, NewMessage
from ggk_ebms.store.sending import Finished, SendStore
from tests.message_support import outbound_di01, received_ack

_LEASE = timedelta(minutes=5)


def _started(db: Database, count: int) -> dict[int, Job]:
    """``count`` queued messages, claimed and Sending: their jobs by message pk."""
    store = MessageStore(db)
    now = SystemClock().now()
    pks = [store.submit(outbound_di01(now, cpa_id="cpa-finish"), [], due_at=now) for _ in range(count)]
    SendStore(db, SystemClock()).start([(pk, "attempt 1 started") for pk in pks])
    claimed = JobQueue(db).claim(
        "send", now=now + timedelta(seconds=1), worker_id="w", limit=count, lease=_LEASE
    )
    return {job.message_pk: job for job in claimed}


def _ack(ref: str, now: datetime) -> NewMessage:
    return received_ack(now, ref_to_message_id=ref, cpa_id="cpa-finish", message_id=f"ack-{ref}")


def _history(store: MessageStore, pk: int) -> list[tuple[str | None, str, str, str | None]]:
    return [(h.from_status, h.event, h.to_status, h.reason) for h in store.history(pk) if h.layer == "ebms"]


def test_a_group_of_outcomes_leaves_each_message_job_attempt_and_signal(db: Database) -> None:
    store = MessageStore(db)
    queue = JobQueue(db)
    jobs = _started(db, 5)
    delivered, replayed, retried, failed, untouched = jobs
    now = SystemClock().now()
    later = now + timedelta(minutes=3)
    ids = {pk: store.get(pk).message_id for pk in jobs}
    # The Acknowledgment of ``replayed`` was kept before (it came twice): kept once, not refused.
    with db.session() as session:
        store.keep_received_in(session, [_ack(ids[replayed], now)])

    def attempt(pk: int, outcome: str, status: int | None, error: str | None = None) -> NewAttempt:
        return NewAttempt(pk, jobs[pk].pk, now, now, outcome, status, error)

    items = [
        Finished(
            Outcome(jobs[delivered].pk, delivered, "complete", Event.ACCEPTED, "Acknowledgment received"),
            attempt(delivered, "ok", 200),
            _ack(ids[delivered], now),
        ),
        Finished(
            Outcome(jobs[replayed].pk, replayed, "complete", Event.ACCEPTED, "Acknowledgment received"),
            attempt(replayed, "ok", 200),
            _ack(ids[replayed], now),
        ),
        Finished(
            Outcome(jobs[retried].pk, retried, "retry", Event.RETRY_SCHEDULED, "HTTP 503", due_at=later),
            attempt(retried, "retry", 503, "HTTP 503"),
        ),
        Finished(
            Outcome(
                jobs[failed].pk, failed, "fail", Event.SEND_FAILED, "HTTP 400", error_code="DeliveryFailure"
            ),
            attempt(failed, "fail", 400, "HTTP 400"),
        ),
        Finished(Outcome(jobs[untouched].pk, untouched, "complete")),
    ]
    steps = SendStore(db, SystemClock()).finish(items)

    assert [None if s is None else s.target for s in steps] == [
        "Delivered",
        "Delivered",
        "Sending",
        "DeliveryFailed",
        None,
    ]
    found = {pk: store.get(pk) for pk in jobs}
    assert {pk: m.status for pk, m in found.items()} == {
        delivered: "Delivered",
        replayed: "Delivered",
        retried: "Sending",
        failed: "DeliveryFailed",
        untouched: "Sending",
    }
    assert (found[failed].status_reason, found[failed].error_code) == ("HTTP 400", "DeliveryFailure")
    assert (found[delivered].status_reason, found[delivered].error_code) == ("Acknowledgment received", None)
    assert _history(store, delivered)[-1] == ("Sending", "accepted", "Delivered", "Acknowledgment received")
    assert _history(store, retried)[-1] == ("Sending", "retry-scheduled", "Sending", "HTTP 503")
    assert _history(store, failed)[-1] == ("Sending", "send-failed", "DeliveryFailed", "HTTP 400")
    assert _history(store, untouched)[-1] == ("Created", "attempt-started", "Sending", "attempt 1 started")
    ended = {pk: queue.get(job.pk) for pk, job in jobs.items()}
    assert {pk: job.status for pk, job in ended.items()} == {
        delivered: "done",
        replayed: "done",
        retried: "pending",
        failed: "failed",
        untouched: "done",
    }
    assert (ended[retried].due_at, ended[retried].claimed_by, ended[retried].last_error) == (
        later,
        None,
        "HTTP 503",
    )
    assert (ended[failed].last_error, ended[failed].claimed_by) == ("HTTP 400", "w")
    assert (ended[delivered].last_error, ended[delivered].claimed_by) == (None, "w")
    assert {pk: [(a.outcome, a.http_status) for a in queue.attempts(pk)] for pk in jobs} == {
        delivered: [("ok", 200)],
        replayed: [("ok", 200)],
        retried: [("retry", 503)],
        failed: [("fail", 400)],
        untouched: [],
    }
    for pk in (delivered, replayed):
        kept = store.find("in", f"ack-{ids[pk]}")
        assert kept is not None and kept.ref_to_message_id == ids[pk]
        assert [(h.from_status, h.to_status) for h in store.history(kept.pk)] == [(None, "Processed")]


def test_a_final_message_only_ends_its_job(db: Database) -> None:
    """An Acknowledgment settled the message before the outcome (ebMS 2.0 §6.3): the stale
    verdict is recorded and dropped and the job is done, not failed."""
    store = MessageStore(db)
    queue = JobQueue(db)
    jobs = _started(db, 2)
    settled, other = jobs
    store.transition(settled, Event.ACCEPTED, "Acknowledgment received")
    now = SystemClock().now()
    SendStore(db, SystemClock()).finish(
        [
            Finished(
                Outcome(jobs[pk].pk, pk, "fail", Event.SEND_FAILED, "HTTP 400"),
                NewAttempt(pk, jobs[pk].pk, now, now, "fail", 400),
            )
            for pk in (settled, other)
        ]
    )
    assert (store.get(settled).status, store.get(other).status) == ("Delivered", "DeliveryFailed")
    assert _history(store, settled)[-1] == ("Delivered", "send-failed", "Delivered", "HTTP 400")
    assert (queue.get(jobs[settled].pk).status, queue.get(jobs[other].pk).status) == ("done", "failed")
    assert queue.get(jobs[settled].pk).claimed_by is None


def test_a_group_of_attempts_starts_and_a_final_message_stays_final(db: Database) -> None:
    """``SendStore.start``: ATTEMPT_STARTED for the group (on PostgreSQL the decision's SELECT
    and one statement), a message settled meanwhile keeps its final state."""
    store = MessageStore(db)
    now = SystemClock().now()
    pks = [store.submit(outbound_di01(now, cpa_id="cpa-finish"), [], due_at=now) for _ in range(3)]
    first, again, settled = pks
    sending = SendStore(db, SystemClock())
    sending.start([(again, "attempt 1 started")])
    sending.start([(settled, "attempt 1 started")])
    store.transition(settled, Event.ACCEPTED, "Acknowledgment received")
    taken = sending.start(
        [(first, "attempt 1 started"), (again, "attempt 2 started"), (settled, "attempt 2 started")]
    )
    assert [(s.source, s.target, s.writes) for s in taken] == [
        ("Created", "Sending", True),
        ("Sending", "Sending", True),
        ("Delivered", "Delivered", False),
    ]
    assert [store.get(pk).status for pk in pks] == ["Sending", "Sending", "Delivered"]
    assert _history(store, first)[-1] == ("Created", "attempt-started", "Sending", "attempt 1 started")
    assert _history(store, again)[-1] == ("Sending", "attempt-started", "Sending", "attempt 2 started")
    assert _history(store, settled)[-1] == ("Delivered", "attempt-started", "Delivered", "attempt 2 started")
    assert store.get(again).status_reason == "attempt 2 started"
    assert sending.start([]) == []
    # A group of final messages only: history rows, no UPDATE (and no time to bind for one).
    [ignored] = sending.start([(settled, "attempt 3 started")])
    assert (ignored.writes, store.get(settled).status) == (False, "Delivered")
    assert _history(store, settled)[-1] == ("Delivered", "attempt-started", "Delivered", "attempt 3 started")


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    sa.event.listen(database.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", note)


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_on_postgresql_a_group_costs_the_statements_of_one_message(db: Database) -> None:
    jobs = _started(db, 11)
    now = datetime.now(UTC)
    store = MessageStore(db)

    def items(pks: list[int]) -> list[Finished]:
        return [
            Finished(
                Outcome(jobs[pk].pk, pk, "complete", Event.ACCEPTED, "Acknowledgment received"),
                NewAttempt(pk, jobs[pk].pk, now, now, "ok", 200),
                _ack(store.get(pk).message_id, now),
            )
            for pk in pks
        ]

    first, *rest = jobs
    alone, group = items([first]), items(rest)
    with _statements(db) as start_one:
        SendStore(db, SystemClock()).start([(first, "attempt 2 started")])
    with _statements(db) as start_many:
        SendStore(db, SystemClock()).start([(pk, "attempt 2 started") for pk in rest])
    assert start_many == start_one
    assert start_one.count("WITH") == 1 and len(start_one) <= 3
    with _statements(db) as one:
        SendStore(db, SystemClock()).finish(alone)
    with _statements(db) as many:
        SendStore(db, SystemClock()).finish(group)
    assert many == one
    assert one.count("WITH") == 1 and len(one) <= 3  # the liveness check, the decision, the write
    assert {store.get(pk).status for pk in jobs} == {"Delivered"}
    with _statements(db) as nothing:
        assert SendStore(db, SystemClock()).finish([]) == []
    assert nothing == []
