"""The lost-status race, made deterministic: an Acknowledgment committed between the moment the
send worker read the message and the moment it writes its verdict must win (ebMS 2.0 §6.5.3:
an acknowledged message is delivered; a later attempt's outcome changes nothing).

Two barriers: one inside the guarded update itself (between its read and its write; PostgreSQL,
where two transactions can really interleave there), and one on the wire: the partner holds its
HTTP answer until the Acknowledgment is committed, then answers with a fatal status.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ggk_ebms import lifecycle
from ggk_ebms.clock import SystemClock
from ggk_ebms.errors import StoreError
from ggk_ebms.lifecycle import Event
from ggk_ebms.pipeline.worker import SendWorker
from ggk_ebms.runtime import Runtime
from ggk_ebms.security.tls import server_context_from_settings
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue, NewAttempt, Outcome
from ggk_ebms.store.messages import MessageStore, NewMessage, SignalEffect, StoredMessage
from ggk_ebms.store.sending import Finished, SendStore
from tests.message_support import outbound_di01, received_ack
from tests.outbound_support import FAST_POLICY, free_port, make_cpa, side_settings, started, submit

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _ack_for(sent: StoredMessage) -> NewMessage:
    """The Acknowledgment the partner sends about ``sent``, as the inbound pipeline stores it."""
    return received_ack(
        datetime.now(UTC),
        ref_to_message_id=sent.message_id,
        cpa_id=sent.cpa_id,
        conversation_id=sent.conversation_id,
        from_party_id=sent.to_party_id,
        to_party_id=sent.from_party_id,
    )


def commit_ack(database: Database, sent: StoredMessage) -> None:
    MessageStore(database).receive(
        _ack_for(sent),
        [],
        response=None,
        deliver=False,
        send_response_async=False,
        effect=SignalEffect(sent.pk, Event.ACCEPTED, "Acknowledgment received"),
    )


def ack_during_decision(
    db: Database, sent: StoredMessage, monkeypatch: pytest.MonkeyPatch, work: Callable[[], object]
) -> None:
    """Run ``work`` (a writer's transaction) in a thread and commit an Acknowledgment of ``sent``
    right after that thread's first lifecycle decision, before its guarded write."""
    commit_during_decision(monkeypatch, work, lambda: commit_ack(db, sent))


def commit_during_decision(
    monkeypatch: pytest.MonkeyPatch, work: Callable[[], object], commit: Callable[[], object]
) -> None:
    """Run ``work`` (a writer's transaction) in a thread and run ``commit`` (another
    transaction) right after that thread's first lifecycle decision, before its guarded write:
    PostgreSQL only, where the two transactions really interleave (SQLite takes its write lock
    at BEGIN IMMEDIATE, so two writers never overlap at all)."""
    decided = threading.Event()
    committed = threading.Event()
    real_decide: Callable[..., Any] = lifecycle.decide
    worker_thread: list[threading.Thread] = []

    def decide_then_wait(flow: lifecycle.Flow, current: str | None, event: Event) -> lifecycle.Step:
        step = real_decide(flow, current, event)
        if threading.current_thread() is worker_thread[0] and not decided.is_set():
            decided.set()  # the worker has read the status and decided...
            assert committed.wait(30), "the other transaction did not commit"
        return step  # ...and now writes, guarded on the status it read

    monkeypatch.setattr(lifecycle, "decide", decide_then_wait)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            work()
        except BaseException as exc:  # reported below
            failures.append(exc)

    worker_thread.append(threading.Thread(target=worker))
    worker_thread[0].start()
    assert decided.wait(30)
    commit()
    committed.set()
    worker_thread[0].join(30)
    assert not worker_thread[0].is_alive() and failures == []


def _ebms_history(database: Database, pk: int) -> list[tuple[str | None, str, str]]:
    return [
        (h.from_status, h.event, h.to_status) for h in MessageStore(database).history(pk) if h.layer == "ebms"
    ]


async def test_ack_committed_while_the_attempt_is_answered_ends_delivered(
    tmp_path: Path, db_url: str
) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    gemeente = side_settings("gemeente", tmp_path, db_url, cpa, g_port)
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'rinis.db'}", cpa, r_port)
    async with started(gemeente, worker=False) as us:
        message = submit(gemeente, us.database, cpa_id)
        answered = asyncio.Event()

        async def partner(request: web.Request) -> web.Response:
            await request.read()
            # The barrier: the worker has read the message (it is Sending) and waits for this
            # answer; the asynchronous Acknowledgment commits before the answer leaves.
            await asyncio.to_thread(commit_ack, us.database, message)
            answered.set()
            return web.Response(status=400, text="refused")  # fatal: the verdict is DeliveryFailed

        app = web.Application()
        app.router.add_post("/ebms", partner)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "localhost", r_port, ssl_context=server_context_from_settings(rinis))
        await site.start()
        runtime = Runtime.build(gemeente, us.database)
        worker = SendWorker(
            gemeente, us.database, clock=runtime.clock, agreements=runtime.agreements, policy=FAST_POLICY
        )
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.close()
            await runner.cleanup()
        assert answered.is_set()
        final = MessageStore(us.database).get(message.pk)
        assert (final.status, final.status_reason) == ("Delivered", "Acknowledgment received")
        assert _ebms_history(us.database, message.pk) == [
            (None, "submitted", "Created"),
            ("Created", "attempt-started", "Sending"),
            ("Sending", "accepted", "Delivered"),
            ("Delivered", "send-failed", "Delivered"),  # the stale verdict, recorded and dropped
        ]
        [job] = JobQueue(us.database).jobs_for(message.pk)
        assert job.status == "done"


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_guarded_update_rereads_when_the_row_moved_between_read_and_write(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-message path (``JobQueue.fail``) reads 'Sending', decides, and finds its guard
    missed: it reads again and records the stale verdict."""
    store = MessageStore(db)
    queue = JobQueue(db)
    sent = _submitted(store)
    store.transition(sent.pk, Event.ATTEMPT_STARTED, "attempt 1 started")
    [job] = queue.claim("send", now=datetime.now(UTC), worker_id="w", lease=_LEASE)

    ack_during_decision(
        db,
        sent,
        monkeypatch,
        lambda: queue.fail(job.pk, "HTTP 400", event=Event.SEND_FAILED, error_code=None),
    )
    final = store.get(sent.pk)
    assert final.status == "Delivered"
    assert _ebms_history(db, sent.pk)[-2:] == [
        ("Sending", "accepted", "Delivered"),
        ("Delivered", "send-failed", "Delivered"),
    ]
    assert queue.get(job.pk).status == "done"


_LEASE = timedelta(minutes=5)


def _submitted(store: MessageStore) -> StoredMessage:
    now = SystemClock().now()
    pk = store.submit(
        outbound_di01(now, cpa_id="cpa-race"),
        [],
        due_at=now,
    )
    return store.get(pk)


async def test_a_failed_database_call_hands_the_claim_back(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send worker's database call fails in the middle of a job: the job goes back to the
    queue at once (pending, unclaimed), instead of waiting out the lease."""
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    gemeente = side_settings("gemeente", tmp_path, db_url, cpa, g_port)
    async with started(gemeente, worker=False) as us:
        message = submit(gemeente, us.database, cpa_id)
        runtime = Runtime.build(gemeente, us.database)
        worker = SendWorker(gemeente, us.database, clock=runtime.clock, agreements=runtime.agreements)

        def database_gone(*args: object, **kwargs: object) -> None:
            raise StoreError("connection lost")

        # The worker reads the parts of its whole group at once (store.messages.parts_of).
        monkeypatch.setattr(worker.store, "parts_of", database_gone)
        try:
            assert await worker.run_once() == 1
        finally:
            await worker.close()
        [job] = JobQueue(us.database).jobs_for(message.pk)
        assert (job.status, job.claimed_by, job.attempts) == ("pending", None, 1)
        assert MessageStore(us.database).get(message.pk).status == "Sending"


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_one_statement_finish_decides_again_when_the_row_moved_after_its_decision(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send worker's one-statement outcome (store/finish_pg.py): its guarded UPDATE misses
    the message an Acknowledgment moved meanwhile, so that message is decided anew (the stale
    verdict recorded and dropped) and its job ends by the new step, while the rest of the
    group's outcome (the attempt) is stored with it."""
    store = MessageStore(db)
    queue = JobQueue(db)
    sent, other = _submitted(store), _submitted(store)
    for message in (sent, other):
        store.transition(message.pk, Event.ATTEMPT_STARTED, "attempt 1 started")
    jobs = {
        job.message_pk: job for job in queue.claim("send", now=datetime.now(UTC), worker_id="w", lease=_LEASE)
    }

    now = SystemClock().now()
    items = [
        Finished(
            Outcome(jobs[pk].pk, pk, "retry", Event.RETRY_SCHEDULED, "HTTP 503", due_at=now + _LEASE),
            NewAttempt(pk, jobs[pk].pk, now, now, "retry", 503),
        )
        for pk in (sent.pk, other.pk)
    ]

    ack_during_decision(db, sent, monkeypatch, lambda: SendStore(db, SystemClock()).finish(items))
    assert (store.get(sent.pk).status, store.get(other.pk).status) == ("Delivered", "Sending")
    assert _ebms_history(db, sent.pk)[-2:] == [
        ("Sending", "accepted", "Delivered"),
        ("Delivered", "retry-scheduled", "Delivered"),
    ]
    assert _ebms_history(db, other.pk)[-1] == ("Sending", "retry-scheduled", "Sending")
    # The moved message's job is done (the Acknowledgment settled it); the other waits its retry.
    assert queue.get(jobs[sent.pk].pk).status == "done"
    assert (queue.get(jobs[other.pk].pk).status, queue.get(jobs[other.pk].pk).claimed_by) == ("pending", None)
    assert [a.http_status for pk in (sent.pk, other.pk) for a in queue.attempts(pk)] == [503, 503]


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_one_statement_start_keeps_a_message_an_acknowledgment_settled_meanwhile(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attempt start in one statement (store/finish_pg.py ``steps_at_once``): decided on
    'Sending' (a retry's second attempt), the guard misses the message the Acknowledgment moved,
    which is decided anew: it stays Delivered, the start recorded and dropped."""
    store = MessageStore(db)
    sent, other = _submitted(store), _submitted(store)
    sending = SendStore(db, SystemClock())
    sending.start([(sent.pk, "attempt 1 started"), (other.pk, "attempt 1 started")])
    taken: list[Any] = []
    ack_during_decision(
        db,
        sent,
        monkeypatch,
        lambda: taken.extend(
            sending.start([(sent.pk, "attempt 2 started"), (other.pk, "attempt 2 started")])
        ),
    )
    assert [(s.source, s.target) for s in taken] == [("Delivered", "Delivered"), ("Sending", "Sending")]
    assert (store.get(sent.pk).status, store.get(other.pk).status) == ("Delivered", "Sending")
    assert _ebms_history(db, sent.pk)[-2:] == [
        ("Sending", "accepted", "Delivered"),
        ("Delivered", "attempt-started", "Delivered"),
    ]
    assert _ebms_history(db, other.pk)[-1] == ("Sending", "attempt-started", "Sending")
