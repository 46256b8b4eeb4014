"""JobQueue on both databases: claim order, lease expiry, finish, retry, attempts, concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from ggk_ebms.clock import FixedClock
from ggk_ebms.errors import StoreError
from ggk_ebms.lifecycle import Event
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore, NewMessage

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def outbound(message_id: str) -> NewMessage:
    return NewMessage(
        direction="out",
        message_id=message_id,
        cpa_id="cpa-1",
        conversation_id="conv",
        from_party_id="00000099000003630000",
        to_party_id="00000099000001000000",
        service="urn:osb:services:wmo",
        action="Verzenden",
        kind="business",
        timestamp=T0,
        status="Created",
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def store(db: Database, clock: FixedClock) -> MessageStore:
    return MessageStore(db, clock)


@pytest.fixture
def queue(db: Database, clock: FixedClock) -> JobQueue:
    return JobQueue(db, clock)


def _submit(store: MessageStore, n: int, due_at: datetime = T0) -> list[int]:
    return [
        store.submit(outbound(f"o{i}@gemeente-{due_at.isoformat()}"), [], due_at=due_at) for i in range(n)
    ]


def test_claim_takes_due_jobs_oldest_first(store: MessageStore, queue: JobQueue) -> None:
    late = _submit(store, 1, T0 + timedelta(minutes=1))
    early = _submit(store, 2, T0 - timedelta(minutes=1))
    future = _submit(store, 1, T0 + timedelta(hours=1))
    claimed = queue.claim("send", now=T0 + timedelta(minutes=1), worker_id="w1", lease=LEASE)
    assert [job.message_pk for job in claimed] == [*early, *late]
    assert all(
        (job.status, job.claimed_by, job.claimed_at, job.attempts)
        == ("running", "w1", T0 + timedelta(minutes=1), 1)
        for job in claimed
    )
    assert queue.claim("send", now=T0 + timedelta(minutes=1), worker_id="w2", lease=LEASE) == []
    assert queue.claim("deliver", now=T0 + timedelta(days=1), worker_id="w2", lease=LEASE) == []
    assert queue.next_due("send") == T0 + timedelta(hours=1)
    # A lease long enough that w1's claims are still alive an hour later.
    later = queue.claim("send", now=T0 + timedelta(hours=1), worker_id="w2", lease=timedelta(hours=2))
    assert [job.message_pk for job in later] == future


def test_claim_respects_limit(store: MessageStore, queue: JobQueue) -> None:
    _submit(store, 5)
    assert len(queue.claim("send", now=T0, worker_id="w", limit=3, lease=LEASE)) == 3
    assert len(queue.claim("send", now=T0, worker_id="w", limit=3, lease=LEASE)) == 2


def test_expired_lease_makes_a_job_claimable_again(store: MessageStore, queue: JobQueue) -> None:
    _submit(store, 1)
    [first] = queue.claim("send", now=T0, worker_id="dead-worker", lease=LEASE)
    assert queue.claim("send", now=T0 + LEASE - timedelta(seconds=1), worker_id="w2", lease=LEASE) == []
    [again] = queue.claim("send", now=T0 + LEASE, worker_id="w2", lease=LEASE)
    assert again.pk == first.pk
    assert (again.claimed_by, again.attempts) == ("w2", 2)


def test_complete_retry_fail(store: MessageStore, queue: JobQueue) -> None:
    a, b, c = _submit(store, 3)
    jobs = {job.message_pk: job for job in queue.claim("send", now=T0, worker_id="w", lease=LEASE)}

    queue.complete(jobs[a].pk, event=Event.ACCEPTED)
    assert queue.get(jobs[a].pk).status == "done"
    assert store.get(a).status == "Delivered"

    queue.retry(jobs[b].pk, due_at=T0 + timedelta(hours=3), error="HTTP 503")
    retried = queue.get(jobs[b].pk)
    assert (retried.status, retried.due_at, retried.last_error, retried.claimed_by) == (
        "pending",
        T0 + timedelta(hours=3),
        "HTTP 503",
        None,
    )
    assert store.get(b).status == "Created"

    queue.fail(
        jobs[c].pk,
        "MessageError DeliveryFailure",
        event=Event.MESSAGE_ERROR,
        error_code="DeliveryFailure",
    )
    failed = queue.get(jobs[c].pk)
    assert (failed.status, failed.last_error) == ("failed", "MessageError DeliveryFailure")
    message = store.get(c)
    assert (message.status, message.error_code) == ("DeliveryFailed", "DeliveryFailure")

    # Only the retried job comes back, and only when due.
    assert queue.claim("send", now=T0 + timedelta(hours=2), worker_id="w", lease=LEASE) == []
    [back] = queue.claim("send", now=T0 + timedelta(hours=3), worker_id="w", lease=LEASE)
    assert (back.pk, back.attempts) == (jobs[b].pk, 2)


def test_unknown_job_and_values(queue: JobQueue) -> None:
    with pytest.raises(StoreError, match="no job"):
        queue.complete(999_999)
    with pytest.raises(StoreError, match="no job"):
        queue.get(999_999)
    with pytest.raises(ValueError, match="queue"):
        queue.claim("elsewhere", now=T0, worker_id="w", lease=LEASE)


def test_attempts_are_recorded_in_order(store: MessageStore, queue: JobQueue) -> None:
    [pk] = _submit(store, 1)
    [job] = queue.claim("send", now=T0, worker_id="w", lease=LEASE)
    second = queue.record_attempt(
        pk,
        job_pk=job.pk,
        started_at=T0 + timedelta(hours=3),
        finished_at=T0 + timedelta(hours=3, seconds=2),
        outcome="ok",
        http_status=200,
    )
    first = queue.record_attempt(
        pk,
        job_pk=job.pk,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=1),
        outcome="retry",
        http_status=503,
        error="Service Unavailable",
    )
    attempts = queue.attempts(pk)
    assert [a.pk for a in attempts] == [first, second]
    assert [(a.outcome, a.http_status, a.error) for a in attempts] == [
        ("retry", 503, "Service Unavailable"),
        ("ok", 200, None),
    ]
    with pytest.raises(ValueError, match="outcome"):
        queue.record_attempt(pk, job_pk=None, started_at=T0, finished_at=T0, outcome="maybe")


def test_enqueue_adds_a_job_for_a_stored_message(store: MessageStore, queue: JobQueue) -> None:
    [pk] = _submit(store, 1)
    extra = queue.enqueue("deliver", pk, due_at=T0)
    assert [job.pk for job in queue.jobs_for(pk) if job.queue == "deliver"] == [extra]


@pytest.mark.parametrize("workers", [4])
def test_concurrent_claims_never_share_a_job(db: Database, store: MessageStore, workers: int) -> None:
    """SKIP LOCKED on PostgreSQL (BEGIN IMMEDIATE on SQLite): every job goes to exactly one worker."""
    total = 60
    _submit(store, total)
    claimed: dict[str, list[int]] = {f"w{n}": [] for n in range(workers)}
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(worker_id: str) -> None:
        own = JobQueue(Database(db.url))
        try:
            start.wait()
            while batch := own.claim("send", now=T0, worker_id=worker_id, limit=3, lease=LEASE):
                claimed[worker_id].extend(job.pk for job in batch)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)
        finally:
            own.db.dispose()

    threads = [threading.Thread(target=work, args=(worker_id,)) for worker_id in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    every = [pk for pks in claimed.values() for pk in pks]
    assert len(every) == total
    assert len(set(every)) == total


def test_a_renewed_claim_is_kept_and_a_released_one_is_claimable_at_once(
    store: MessageStore, queue: JobQueue, clock: FixedClock
) -> None:
    _submit(store, 2)
    first, second = queue.claim("send", now=T0, worker_id="alive", lease=LEASE)
    # The worker renews the claim on the job it works on; the other one lapses.
    assert queue.heartbeat("alive", [first.pk], now=T0 + LEASE - timedelta(seconds=1)) == 1
    assert queue.heartbeat("someone-else", [first.pk], now=T0 + LEASE) == 0
    [taken] = queue.claim("send", now=T0 + LEASE, worker_id="other", lease=LEASE)
    assert taken.pk == second.pk
    assert queue.get(first.pk).claimed_by == "alive"
    # After a failed database call the worker hands its claims back: due at once, for anyone.
    clock.advance(timedelta(seconds=10))
    assert queue.release("alive") == 1
    back = queue.get(first.pk)
    assert (back.status, back.claimed_by, back.due_at) == ("pending", None, clock.now())
    [again] = queue.claim("send", now=clock.now(), worker_id="other", lease=LEASE)
    assert again.pk == first.pk
