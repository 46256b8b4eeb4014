"""The job queue in the database: several workers, processes or machines share it safely.

A job is claimed by marking it 'running' with the worker's id and the claim time. On PostgreSQL
the candidates are selected ``FOR UPDATE SKIP LOCKED`` (architecture: jobs are claimed that way so
endpoint processes can share one PostgreSQL without a home-made cluster): concurrent claimers
pass over each other's rows instead of waiting or taking them twice. On SQLite the session's
``BEGIN IMMEDIATE`` makes the select-and-update one writer at a time, which gives the same result.

A worker that dies leaves its jobs 'running'; once the claim is older than the lease they are
claimable again, so nothing is lost (and the work is done at least once: handlers must be
idempotent, which the store's duplicate rules provide for sending and delivery).

Callers pass the times (``now``, ``due_at``): retry schedules come from the CPA (ebMS 2.0 §6.4, BP ch. 3)
and are decided by the worker, not by the queue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms import lifecycle
from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.errors import StoreError
from ggk_ebms.lifecycle import Event, Step
from ggk_ebms.store import lifecycle as steps
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import OUTCOMES, QUEUES, attempt, job


@dataclass(frozen=True)
class Job:
    pk: int
    queue: str
    message_pk: int
    status: str
    due_at: datetime
    attempts: int  # claims so far, this one included: a job that crashed its worker counts too
    last_error: str | None
    claimed_by: str | None
    claimed_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Attempt:
    """One try to deliver or send a message, kept for the operator (message log, retries)."""

    pk: int
    message_pk: int
    job_pk: int | None
    started_at: datetime
    finished_at: datetime
    outcome: str
    http_status: int | None
    error: str | None


def _row_to_job(row: sa.Row[Any]) -> Job:
    return Job(**{column.name: row._mapping[column.name] for column in job.c})


def _row_to_attempt(row: sa.Row[Any]) -> Attempt:
    return Attempt(**{column.name: row._mapping[column.name] for column in attempt.c})


def _check_queue(queue: str) -> None:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; known: {', '.join(QUEUES)}")


# Built once; the values go in as parameters (SQLAlchemy's compiled cache hits every time).
_INSERT_JOB = sa.insert(job).returning(job.c.pk)


def insert_job(session: Session, queue: str, message_pk: int, *, due_at: datetime, now: datetime) -> int:
    """Insert a pending job inside the caller's transaction; the one place jobs are created."""
    _check_queue(queue)
    pk: int = session.execute(
        _INSERT_JOB,
        {
            "queue": queue,
            "message_pk": message_pk,
            "status": "pending",
            "due_at": due_at,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        },
    ).scalar_one()
    return pk


def settled(values: dict[str, Any], step: Step | None) -> dict[str, Any]:
    """The job's new values, unless the step found the message final already: an Acknowledgment
    settled it (ebMS 2.0 §6.3) and the job has nothing left to do."""
    if step is not None and not step.writes and lifecycle.is_final(step.flow, step.target):
        return {"status": "done", "last_error": None, "claimed_by": None, "claimed_at": None}
    return values


@dataclass(frozen=True)
class Outcome:
    """How one claimed job ends, for ``finish_many``: ``complete``, ``retry`` (pending again at
    ``due_at``) or ``fail``, with the lifecycle ``event`` to apply to its message, if any."""

    job_pk: int
    message_pk: int
    end: str  # "complete" | "retry" | "fail"
    event: Event | None = None
    reason: str | None = None
    error_code: str | None = None
    due_at: datetime | None = None

    def values(self) -> dict[str, Any]:
        if self.end == "complete":
            return {"status": "done", "last_error": None}
        if self.end == "fail":
            return {"status": "failed", "last_error": self.reason}
        if self.end == "retry" and self.due_at is not None:
            return {
                "status": "pending",
                "due_at": self.due_at,
                "last_error": self.reason,
                "claimed_by": None,
                "claimed_at": None,
            }
        raise ValueError(f"job {self.job_pk}: unknown end {self.end!r} (a retry needs due_at)")


@dataclass(frozen=True)
class NewAttempt:
    """An attempt to record with ``finish_many`` (JobQueue.record_attempt's arguments)."""

    message_pk: int
    job_pk: int | None
    started_at: datetime
    finished_at: datetime
    outcome: str
    http_status: int | None = None
    error: str | None = None


_INSERT_ATTEMPT = sa.insert(attempt)
# Flat fields: dataclasses.asdict would deep-copy every value.
_ATTEMPT_FIELDS = tuple(f.name for f in dataclasses.fields(NewAttempt))


def check_attempts(attempts: Sequence[NewAttempt]) -> None:
    """Refuse an attempt outcome the table does not know (a bug, not input)."""
    for new in attempts:
        if new.outcome not in OUTCOMES:
            raise ValueError(f"unknown attempt outcome {new.outcome!r}")


def finish_many(
    session: Session, outcomes: Sequence[Outcome], attempts: Sequence[NewAttempt], *, now: datetime
) -> list[Step | None]:
    """Record ``attempts`` and end the jobs of ``outcomes`` in the caller's transaction, each
    message's status through ``store.lifecycle`` (guarded, ``transition_many``); steps in order.

    One transaction for a group of outcomes means one commit (one fsync) for all of them instead
    of one each (docs/sending.md "Pipelining"); each outcome still reaches only its own job and
    message. The caller owns the jobs (it claimed them), so no other worker writes them meanwhile.
    """
    check_attempts(attempts)
    if attempts:
        session.execute(
            _INSERT_ATTEMPT, [{name: getattr(new, name) for name in _ATTEMPT_FIELDS} for new in attempts]
        )
    changes = [
        steps.Change(o.message_pk, o.event, o.reason, o.error_code) for o in outcomes if o.event is not None
    ]
    taken = iter(steps.transition_many(session, changes, now=now))
    result: list[Step | None] = []
    # Jobs ending alike (most: done) are written by one UPDATE.
    alike: dict[tuple[tuple[str, Any], ...], list[int]] = {}
    for outcome in outcomes:
        step = next(taken) if outcome.event is not None else None
        result.append(step)
        values = settled(outcome.values(), step)
        alike.setdefault(tuple(sorted(values.items())), []).append(outcome.job_pk)
    for values_key, job_pks in alike.items():
        session.execute(
            sa.update(job).where(job.c.pk.in_(job_pks)).values(**dict(values_key), updated_at=now)
        )
    return result


class JobQueue:
    """Claim, finish, reschedule and record the attempts of jobs."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def enqueue(self, queue: str, message_pk: int, *, due_at: datetime) -> int:
        """Add a pending job for a stored message (``MessageStore`` does this itself on store)."""
        with self.db.session() as session:
            return insert_job(session, queue, message_pk, due_at=due_at, now=self.clock.now())

    def claim(
        self,
        queue: str,
        *,
        now: datetime,
        worker_id: str,
        limit: int = 10,
        lease: timedelta,
    ) -> list[Job]:
        """Take up to ``limit`` due jobs of ``queue`` for ``worker_id``, oldest due first.

        Due: pending with ``due_at <= now``, or running with a claim older than ``lease`` (its
        worker is taken to be dead). The returned jobs are 'running', claimed now, attempts + 1.
        """
        _check_queue(queue)
        with self.db.session() as session:
            return claim_due(
                session,
                queue,
                now=now,
                worker_id=worker_id,
                limit=limit,
                lease=lease,
                updated_at=self.clock.now(),
            )

    def _finish(
        self,
        job_pk: int,
        values: dict[str, Any],
        event: Event | None,
        reason: str | None,
        error_code: str | None,
        business: Sequence[steps.BusinessChange] = (),
    ) -> Step | None:
        now = self.clock.now()
        with self.db.session() as session:
            message_pk = session.execute(
                sa.select(job.c.message_pk).where(job.c.pk == job_pk)
            ).scalar_one_or_none()
            if message_pk is None:
                raise StoreError(f"no job with pk {job_pk}")
            for change in business:
                steps.apply_business(session, change, now=now)
            step = None
            if event is not None:
                # Same transaction: the message's status never disagrees with its job's outcome.
                # The update is guarded, so a final state another transaction wrote is kept...
                step = steps.transition(session, message_pk, event, now=now, reason=reason, code=error_code)
            session.execute(
                sa.update(job).where(job.c.pk == job_pk).values(**settled(values, step), updated_at=now)
            )
            return step

    def complete(
        self,
        job_pk: int,
        *,
        event: Event | None = None,
        reason: str | None = None,
        business: Sequence[steps.BusinessChange] = (),
    ) -> Step | None:
        """The job is done; optionally apply a lifecycle ``event`` (and business steps) at once."""
        return self._finish(job_pk, {"status": "done", "last_error": None}, event, reason, None, business)

    def retry(
        self,
        job_pk: int,
        *,
        due_at: datetime,
        error: str,
        event: Event | None = None,
        reason: str | None = None,
    ) -> Step | None:
        """Put the job back as pending until ``due_at``, keeping the reason it failed this time."""
        return self._finish(
            job_pk,
            {
                "status": "pending",
                "due_at": due_at,
                "last_error": error,
                "claimed_by": None,
                "claimed_at": None,
            },
            event,
            reason if reason is not None else (error if event is not None else None),
            None,
        )

    def fail(
        self,
        job_pk: int,
        error: str,
        *,
        event: Event | None = None,
        error_code: str | None = None,
        business: Sequence[steps.BusinessChange] = (),
    ) -> Step | None:
        """Give the job up for good; optionally apply ``event`` (e.g. SEND_FAILED + ebMS code)."""
        return self._finish(
            job_pk, {"status": "failed", "last_error": error}, event, error, error_code, business
        )

    def heartbeat(self, worker_id: str, job_pks: Sequence[int], *, now: datetime) -> int:
        """Renew ``worker_id``'s claims on ``job_pks`` (still running); returns how many.

        A claim is a heartbeat lease: a worker renews the claims of the jobs it is working on, so
        the lease can be short (job_lease_seconds) and a dead worker's jobs are taken over soon,
        while a slow but living one keeps its job however long its request takes.
        """
        if not job_pks:
            return 0
        with self.db.session() as session:
            result = session.execute(
                sa.update(job)
                .where(job.c.pk.in_(list(job_pks)), job.c.status == "running", job.c.claimed_by == worker_id)
                .values(claimed_at=now)
            )
        renewed: int = result.rowcount  # type: ignore[attr-defined]
        return renewed

    def release(self, worker_id: str, job_pks: Sequence[int] | None = None) -> int:
        """Give ``worker_id``'s running jobs (or only ``job_pks``) back as pending, due at once.

        After a failed database call a worker cannot tell how far its jobs got; handing them back
        lets any worker (itself included) start them again without waiting for the lease.
        """
        now = self.clock.now()
        mine = sa.and_(job.c.status == "running", job.c.claimed_by == worker_id)
        if job_pks is not None:
            mine = sa.and_(mine, job.c.pk.in_(list(job_pks)))
        with self.db.session() as session:
            result = session.execute(
                sa.update(job)
                .where(mine)
                .values(status="pending", claimed_by=None, claimed_at=None, due_at=now, updated_at=now)
            )
        released: int = result.rowcount  # type: ignore[attr-defined]
        return released

    def get(self, job_pk: int) -> Job:
        with self.db.session() as session:
            row = session.execute(sa.select(job).where(job.c.pk == job_pk)).first()
        if row is None:
            raise StoreError(f"no job with pk {job_pk}")
        return _row_to_job(row)

    def jobs_for(self, message_pk: int) -> list[Job]:
        """Every job of a message, oldest first."""
        with self.db.session() as session:
            rows = session.execute(
                sa.select(job).where(job.c.message_pk == message_pk).order_by(job.c.pk)
            ).all()
        return [_row_to_job(row) for row in rows]

    def next_due(self, queue: str) -> datetime | None:
        """When the earliest pending job of ``queue`` is due, so an idle worker knows how long to wait."""
        _check_queue(queue)
        with self.db.session() as session:
            due: datetime | None = session.execute(
                sa.select(sa.func.min(job.c.due_at)).where(job.c.queue == queue, job.c.status == "pending")
            ).scalar_one()
        return due

    def record_attempt(
        self,
        message_pk: int,
        *,
        job_pk: int | None,
        started_at: datetime,
        finished_at: datetime,
        outcome: str,
        http_status: int | None = None,
        error: str | None = None,
    ) -> int:
        """Keep one delivery/send attempt (outcome 'ok', 'retry' or 'fail'); returns its pk."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown attempt outcome {outcome!r}")
        with self.db.session() as session:
            pk: int = session.execute(
                sa.insert(attempt)
                .values(
                    message_pk=message_pk,
                    job_pk=job_pk,
                    started_at=started_at,
                    finished_at=finished_at,
                    outcome=outcome,
                    http_status=http_status,
                    error=error,
                )
                .returning(attempt.c.pk)
            ).scalar_one()
        return pk

    def attempts_of(self, message_pks: Iterable[int]) -> dict[int, list[Attempt]]:
        """``attempts`` for several messages in one query (the send worker's claimed group)."""
        pks = sorted(set(message_pks))
        found: dict[int, list[Attempt]] = {pk: [] for pk in pks}
        if not pks:
            return found
        with self.db.session() as session:
            rows = session.execute(
                sa.select(attempt)
                .where(attempt.c.message_pk.in_(pks))
                .order_by(attempt.c.message_pk, attempt.c.started_at, attempt.c.pk)
            ).all()
        for row in rows:
            found[row.message_pk].append(_row_to_attempt(row))
        return found

    def attempts(self, message_pk: int) -> list[Attempt]:
        """The attempts for a message, in the order they were made."""
        with self.db.session() as session:
            rows = session.execute(
                sa.select(attempt)
                .where(attempt.c.message_pk == message_pk)
                .order_by(attempt.c.started_at, attempt.c.pk)
            ).all()
        return [_row_to_attempt(row) for row in rows]


def claimable_condition(queue: str, now: datetime, lease: timedelta) -> sa.ColumnElement[bool]:
    """The jobs of ``queue`` a worker may claim at ``now``: pending and due, or running with a
    claim older than ``lease`` (its worker is taken to be dead: heartbeat leases, docs/rules.md)."""
    return sa.and_(
        job.c.queue == queue,
        sa.or_(
            sa.and_(job.c.status == "pending", job.c.due_at <= now),
            sa.and_(job.c.status == "running", job.c.claimed_at <= now - lease),
        ),
    )


def claim_due(
    session: Session,
    queue: str,
    *,
    now: datetime,
    worker_id: str,
    limit: int,
    lease: timedelta,
    updated_at: datetime | None = None,
) -> list[Job]:
    """Claim up to ``limit`` due jobs of ``queue`` in ONE statement, oldest due first.

    ``UPDATE job ... WHERE pk IN (SELECT pk ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING``: on
    PostgreSQL concurrent claimers (other processes, other nodes) pass over each other's rows, so
    no job is taken twice; on SQLite the session's ``BEGIN IMMEDIATE`` makes the claim one
    writer at a time. The claimed jobs are 'running', claimed now, attempts + 1.
    """
    candidates = (
        sa.select(job.c.pk)
        .where(claimable_condition(queue, now, lease))
        .order_by(job.c.due_at, job.c.pk)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = session.execute(
        sa.update(job)
        .where(job.c.pk.in_(candidates))
        .values(
            status="running",
            claimed_by=worker_id,
            claimed_at=now,
            attempts=job.c.attempts + 1,
            updated_at=now if updated_at is None else updated_at,
        )
        .returning(*job.c)
    ).all()
    return sorted((_row_to_job(row) for row in rows), key=lambda j: (j.due_at, j.pk))
