"""Pipelined sending (docs/sending.md "Pipelining"), proven without timing.

* ``Batcher``: callers queued in one turn of the event loop share one call; a failed item fails
  only its own caller.
* The store's group steps on SQLite and PostgreSQL: a claim of N jobs costs the same statements
  as a claim of one; ``transition_many`` keeps the guard (a final state survives a stale event);
  ``finish_many`` brings each outcome of a group to its own job and message.
* The worker: a fake partner client counts the requests on the wire and holds them behind an
  event; the worker claims up to send_max_in_flight jobs, puts no more than
  send_max_in_flight_per_partner on the wire, and writes the held outcomes as one group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa

from ggk_ebms.clock import SystemClock
from ggk_ebms.lifecycle import Event, Status
from ggk_ebms.pipeline.batching import Batcher
from ggk_ebms.pipeline.worker import SendWorker
from ggk_ebms.runtime import Runtime
from ggk_ebms.store import lifecycle as steps
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue, NewAttempt, Outcome, finish_many
from ggk_ebms.store.messages import MessageStore, NewMessage
from ggk_ebms.store.sending import Finished
from ggk_ebms.transport.client import EbmsClient
from ggk_ebms.transport.result import HttpResult
from tests.message_support import outbound_di01
from tests.outbound_support import FAST_POLICY, free_port, make_cpa, side_settings, started, submit

_LEASE = timedelta(minutes=5)


# --- Batcher --------------------------------------------------------------------------------------


async def test_callers_of_one_turn_share_one_call() -> None:
    groups: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        groups.append(list(items))
        return [2 * item for item in items]

    batcher: Batcher[int, int] = Batcher(double, most=10)
    assert await asyncio.gather(*(batcher.submit(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert groups == [[0, 1, 2, 3, 4]]


async def test_a_group_is_at_most_most_items() -> None:
    groups: list[list[int]] = []

    def same(items: list[int]) -> list[int]:
        groups.append(list(items))
        return items

    batcher: Batcher[int, int] = Batcher(same, most=2)
    assert await asyncio.gather(*(batcher.submit(n) for n in range(5))) == [0, 1, 2, 3, 4]
    assert groups == [[0, 1], [2, 3], [4]]


async def test_a_failed_item_fails_only_its_caller() -> None:
    def picky(items: list[int]) -> list[int | Exception]:
        return [ValueError(f"no {item}") if item == 2 else item for item in items]

    batcher: Batcher[int, int] = Batcher(picky, most=10)
    results = await asyncio.gather(*(batcher.submit(n) for n in range(4)), return_exceptions=True)
    assert results[:2] == [0, 1] and results[3] == 3
    assert isinstance(results[2], ValueError) and str(results[2]) == "no 2"


async def test_a_failed_call_fails_the_whole_group_and_the_next_group_goes_on() -> None:
    calls = 0

    def flaky(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database gone")
        return items

    batcher: Batcher[int, int] = Batcher(flaky, most=10)
    first = await asyncio.gather(*(batcher.submit(n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in first)
    assert await batcher.submit(7) == 7


# --- the store's group steps ---------------------------------------------------------------------


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    engine = database.engine
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def _queued(db: Database, count: int) -> list[int]:
    store = MessageStore(db)
    now = SystemClock().now()
    return [store.submit(outbound_di01(now, cpa_id="cpa-pipe"), [], due_at=now) for _ in range(count)]


def test_a_claim_of_many_jobs_costs_the_statements_of_a_claim_of_one(db: Database) -> None:
    _queued(db, 12)
    queue = JobQueue(db)
    now = datetime.now(UTC) + timedelta(seconds=1)
    with _statements(db) as one:
        assert len(queue.claim("send", now=now, worker_id="w1", limit=1, lease=_LEASE)) == 1
    with _statements(db) as many:
        claimed = queue.claim("send", now=now, worker_id="w2", limit=10, lease=_LEASE)
    assert len(claimed) == 10
    assert many == one  # the same SELECT ... FOR UPDATE SKIP LOCKED and one UPDATE, N jobs or one
    assert {job.claimed_by for job in claimed} == {"w2"}


def test_transition_many_moves_each_message_and_keeps_a_final_state(db: Database) -> None:
    store = MessageStore(db)
    first, second, acknowledged = _queued(db, 3)
    store.transition(acknowledged, Event.ATTEMPT_STARTED, "attempt 1 started")
    store.transition(acknowledged, Event.ACCEPTED, "Acknowledgment received")
    changes = [
        steps.Change(first, Event.ATTEMPT_STARTED, "attempt 1 started"),
        steps.Change(second, Event.ATTEMPT_STARTED, "attempt 1 started"),
        # Stale: an Acknowledgment settled it already; the step is recorded and dropped.
        steps.Change(acknowledged, Event.SEND_FAILED, "HTTP 400"),
    ]
    with db.session() as session:
        taken = steps.transition_many(session, changes, now=datetime.now(UTC))
    assert [(step.source, step.target, step.writes) for step in taken] == [
        ("Created", "Sending", True),
        ("Created", "Sending", True),
        ("Delivered", "Delivered", False),
    ]
    assert [store.get(pk).status for pk in (first, second, acknowledged)] == [
        "Sending",
        "Sending",
        "Delivered",
    ]
    assert [(h.from_status, h.event, h.to_status) for h in store.history(acknowledged)][-1] == (
        "Delivered",
        "send-failed",
        "Delivered",
    )


def test_transition_many_takes_a_repeated_message_after_its_first_step(db: Database) -> None:
    store = MessageStore(db)
    [pk] = _queued(db, 1)
    changes = [
        steps.Change(pk, Event.ATTEMPT_STARTED, "attempt 1 started"),
        steps.Change(pk, Event.ACCEPTED, "Acknowledgment received"),
    ]
    with db.session() as session:
        taken = steps.transition_many(session, changes, now=datetime.now(UTC))
    assert [(step.source, step.target) for step in taken] == [
        ("Created", "Sending"),
        ("Sending", "Delivered"),
    ]
    assert store.get(pk).status == "Delivered"


def test_finish_many_brings_each_outcome_to_its_own_job_and_message(db: Database) -> None:
    store = MessageStore(db)
    queue = JobQueue(db)
    pks = _queued(db, 4)
    now = datetime.now(UTC)
    jobs = queue.claim("send", now=now + timedelta(seconds=1), worker_id="w", limit=10, lease=_LEASE)
    job_of = {job.message_pk: job.pk for job in jobs}
    with db.session() as session:
        steps.transition_many(
            session, [steps.Change(pk, Event.ATTEMPT_STARTED, "attempt 1 started") for pk in pks], now=now
        )
    later = now + timedelta(minutes=3)
    delivered, retried, failed, untouched = pks
    outcomes = [
        Outcome(job_of[delivered], delivered, "complete", Event.ACCEPTED, "Acknowledgment received"),
        Outcome(job_of[retried], retried, "retry", Event.RETRY_SCHEDULED, "HTTP 503", due_at=later),
        Outcome(job_of[failed], failed, "fail", Event.SEND_FAILED, "HTTP 400", error_code="DeliveryFailure"),
        Outcome(job_of[untouched], untouched, "complete"),
    ]
    attempts = [
        NewAttempt(pk, job_of[pk], now, now, outcome, status)
        for pk, outcome, status in ((delivered, "ok", 200), (retried, "retry", 503), (failed, "fail", 400))
    ]
    with db.session() as session:
        finish_many(session, outcomes, attempts, now=now)
    statuses = {pk: store.get(pk) for pk in pks}
    assert statuses[delivered].status == "Delivered"
    assert statuses[retried].status == "Sending"  # a retry waits in Sending (BP ch. 3 retries)
    assert (statuses[failed].status, statuses[failed].error_code) == ("DeliveryFailed", "DeliveryFailure")
    assert statuses[untouched].status == "Sending"
    ended = {pk: queue.get(job_of[pk]) for pk in pks}
    assert (ended[delivered].status, ended[failed].status, ended[untouched].status) == (
        "done",
        "failed",
        "done",
    )
    assert (ended[retried].status, ended[retried].due_at, ended[retried].claimed_by) == (
        "pending",
        later,
        None,
    )
    assert [a.http_status for pk in pks for a in queue.attempts(pk)] == [200, 503, 400]


# --- the worker ----------------------------------------------------------------------------------


class HeldPartner:
    """A stand-in for ``EbmsClient``: counts the requests on the wire and holds each until
    ``gate`` is set, then answers 204 (the partner accepted; its Acknowledgment comes later)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.on_wire = 0
        self.most_on_wire = 0
        self.seen: list[str] = []

    async def post(
        self, url: str, *, body: Any, content_type: str, expected_server_cert_der: Any
    ) -> HttpResult:
        self.on_wire += 1
        self.most_on_wire = max(self.most_on_wire, self.on_wire)
        self.seen.append(url)
        try:
            await self.gate.wait()
        finally:
            self.on_wire -= 1
        return HttpResult(204, None, b"", 0.0, None)

    async def close(self) -> None:
        return None


async def _until(check: Any, what: str, timeout: float = 30.0) -> None:
    """Poll ``check`` with a generous deadline (no timing is asserted)."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _running(database: Database, worker_id: str, pks: Sequence[int]) -> int:
    queue = JobQueue(database)
    return sum(
        1
        for pk in pks
        for job in queue.jobs_for(pk)
        if job.status == "running" and job.claimed_by == worker_id
    )


async def test_the_worker_keeps_its_places_full_and_no_more_than_its_partner_limit_on_the_wire(
    tmp_path: Path, db_url: str
) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    gemeente = side_settings("gemeente", tmp_path, db_url, cpa, g_port)
    async with started(gemeente, worker=False) as us:
        pks = [submit(gemeente, us.database, cpa_id).pk for _ in range(10)]
        partner = HeldPartner()
        runtime = Runtime.build(gemeente, us.database)
        worker = SendWorker(
            gemeente,
            us.database,
            clock=runtime.clock,
            agreements=runtime.agreements,
            client=cast(EbmsClient, partner),
            policy=FAST_POLICY,
            max_in_flight=8,
            max_per_partner=3,
        )
        groups: list[int] = []
        real_finish = worker.sending.finish

        def finish(items: Sequence[Finished]) -> Any:
            groups.append(len(items))
            return real_finish(items)

        worker.sending.finish = finish  # type: ignore[method-assign]
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        try:
            # Eight claimed (one claim), three of them on the wire, five waiting for a place.
            await _until(lambda: partner.on_wire == 3, "three requests on the wire")
            await _until(lambda: _running(us.database, worker.worker_id, pks) == 8, "eight jobs claimed")
            assert partner.most_on_wire == 3
            partner.gate.set()  # every held request answers in the same turn of the event loop
            await _until(lambda: len(partner.seen) == 10 and sum(groups) == 10, "every outcome written")
        finally:
            stop.set()
            await running
        assert partner.most_on_wire == 3
        assert max(groups) > 1  # outcomes answered together were written together
        queue = JobQueue(us.database)
        for pk in pks:
            [attempt] = queue.attempts(pk)
            [job] = queue.jobs_for(pk)
            assert (attempt.http_status, attempt.job_pk) == (204, job.pk)
            assert (job.status, job.claimed_by) == ("pending", None)  # waiting for the Acknowledgment
        assert {MessageStore(us.database).get(pk).status for pk in pks} == {Status.SENDING.value}


def test_kept_signals_skip_one_kept_before(db: Database) -> None:
    store = MessageStore(db)
    now = datetime.now(UTC)

    def ack(n: int) -> NewMessage:
        return NewMessage(
            direction="in",
            message_id=f"ack-{n}@rinis.test",
            cpa_id="cpa-pipe",
            conversation_id="c",
            ref_to_message_id=f"m-{n}@gemeente.test",
            from_party_id="rinis",
            to_party_id="gemeente",
            service="urn:oasis:names:tc:ebxml-msg:service",
            action="Acknowledgment",
            kind="Acknowledgment",
            timestamp=now,
            status=Status.PROCESSED,
        )

    with db.session() as session:
        [kept] = store.keep_received_in(session, [ack(1)])
    with db.session() as session:
        again = store.keep_received_in(session, [ack(0), ack(1), ack(2)])
    assert again[1] is None and None not in (again[0], again[2])
    assert store.find("in", "ack-1@rinis.test") is not None
    assert kept is not None and store.find("in", "ack-1@rinis.test").pk == kept  # type: ignore[union-attr]
    assert {store.find("in", f"ack-{n}@rinis.test") is not None for n in (0, 2)} == {True}
