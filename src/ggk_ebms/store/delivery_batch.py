"""Batch reads and writes of the delivery worker: one statement or one transaction for many jobs.

The worker claims up to ``delivery_batch`` 'deliver' jobs in one statement (``JobQueue.claim``:
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite). This module then

- reads the claimed messages and their parts in two statements (``load``), instead of two
  sessions per message;
- writes the stuurgegevens of the batch (``record_stuf``) and the outcomes of the batch
  (``finish_delivered``) each in ONE transaction.

Every status change in those transactions is a guarded lifecycle step of ``store/lifecycle.py``,
the steps the one-job path takes: ``transition_batch`` decides each message's step from the same
table and writes the batch with ``UPDATE ... WHERE pk IN (...) AND status = :expected``; a message
another transaction moved in between goes through ``transition``/``business_transition``, which
read it again and decide anew. The stuf_message rows, the attempts and the job rows of the batch
are shared statements too, and the batch has one commit. On PostgreSQL the attempts, the ebMS
steps and the job ends of the outcomes are one statement (``finish_pg.finish_at_once``, the send
worker's), after the decision's SELECT, and so are the business steps of each transaction
(``finish_pg.steps_at_once``).
A batch is first applied in one go; if any message's step fails, that transaction is rolled back
and the batch applied again with each message's steps in a SAVEPOINT of their own, so the failing
message is rolled back alone and reported back while the others still reach their own outcome
in the same commit (docs/delivery.md "Batches").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.lifecycle import Event
from ggk_ebms.spool import SpooledRange
from ggk_ebms.store import lifecycle as steps
from ggk_ebms.store.among import among
from ggk_ebms.store.db import Database
from ggk_ebms.store.finish_pg import finish_at_once, steps_at_once
from ggk_ebms.store.jobs import Job, NewAttempt, Outcome, claim_due, finish_many
from ggk_ebms.store.large_parts import PART_SLICE, read_part_spooled
from ggk_ebms.store.messages import StoredMessage, _row_to_message
from ggk_ebms.store.stuf import StufRecord, upsert_record
from ggk_ebms.store.stuf_pg import upsert_records
from ggk_ebms.store.tables import message, message_part, stuf_message

T = TypeVar("T")


def claim_deliveries(
    db: Database, *, now: datetime, worker_id: str, limit: int, lease: timedelta
) -> list[Job]:
    """Claim up to ``limit`` due 'deliver' jobs in ONE statement, oldest due first: the claim
    ``JobQueue.claim`` makes too (``jobs.claim_due``, SKIP LOCKED on PostgreSQL)."""
    with db.session() as session:
        return claim_due(session, "deliver", now=now, worker_id=worker_id, limit=limit, lease=lease)


@dataclass(frozen=True)
class Loaded:
    """The claimed messages and the data of their parts (in MIME order), by message pk."""

    messages: dict[int, StoredMessage]
    parts: dict[int, list[bytes | SpooledRange]]


def load(db: Database, message_pks: Sequence[int]) -> Loaded:
    """The messages and their parts in one session and two statements.

    Parts above ``PART_SLICE`` are left out of the bulk read and fetched in slices into a
    temporary file, as ``MessageStore.part_contents`` does (store/large_parts.py): a 25 MB part
    never travels as hex text nor is held whole in memory (docs/performance.md "Memory").
    """
    pks = sorted(set(message_pks))
    if not pks:
        return Loaded({}, {})
    small = sa.case((message_part.c.size <= PART_SLICE, message_part.c.data), else_=sa.null())
    with db.session() as session:
        messages = {
            row.pk: _row_to_message(row)
            for row in session.execute(sa.select(message).where(among(session, message.c.pk, pks))).all()
        }
        rows = session.execute(
            sa.select(message_part.c.pk, message_part.c.message_pk, message_part.c.size, small.label("data"))
            .where(among(session, message_part.c.message_pk, pks))
            .order_by(message_part.c.message_pk, message_part.c.seq)
        ).all()
        parts: dict[int, list[bytes | SpooledRange]] = {pk: [] for pk in pks}
        for row in rows:
            data: bytes | SpooledRange
            if row.size > PART_SLICE:
                data = read_part_spooled(session, row.pk, row.size)
            else:
                data = b"" if row.data is None else bytes(row.data)
            parts[row.message_pk].append(data)
    return Loaded(messages, parts)


def _apply_batch(
    db: Database,
    items: Sequence[T],
    key: Callable[[T], int],
    fast: Callable[[Session, Sequence[T]], None],
    one: Callable[[Session, T], None],
) -> list[int]:
    """Apply a batch in one transaction; returns the keys of the items that failed.

    First the whole batch in one go (``fast``: statements shared by the batch, no savepoints).
    If that raises, it was rolled back whole and the batch is applied again item by item
    (``one``), each in a SAVEPOINT, so a failing item is rolled back alone and reported while the
    others commit. A failing database raises ``StoreError`` from the second round too.
    """
    if not items:
        return []
    try:
        with db.session() as session:
            fast(session, items)
        return []
    except GgkEbmsError:
        pass
    failed: list[int] = []
    with db.session() as session:
        for item in items:
            try:
                with session.begin_nested():
                    one(session, item)
            except (GgkEbmsError, sa.exc.SQLAlchemyError):
                failed.append(key(item))
    return failed


def record_stuf(db: Database, records: Sequence[StufRecord], *, now: datetime) -> list[int]:
    """Store the stuurgegevens of a batch and apply STUF_RECEIVED to each, in one transaction.

    Returns the message pks whose steps failed (the caller records those one by one). On
    PostgreSQL the stuf_message rows of a batch of distinct messages are ONE upsert
    (store/stuf_pg.py); otherwise one SELECT, one multi-row INSERT and an upsert per message
    delivered again. The business steps are guarded steps of store/lifecycle.py
    (``_business_steps``).
    """
    at_once = db.backend == "postgresql"

    def fast(session: Session, batch: Sequence[StufRecord]) -> None:
        pks = [record.message_pk for record in batch]
        if at_once and len(set(pks)) == len(pks):
            upsert_records(session, batch, now=now)
        else:
            _insert_or_replace(session, batch, now)
        received = [steps.BusinessChange(pk, Event.STUF_RECEIVED) for pk in pks]
        _business_steps(session, received, now, at_once=at_once)

    def one(session: Session, record: StufRecord) -> None:
        upsert_record(session, record, now=now)
        steps.business_transition(session, record.message_pk, Event.STUF_RECEIVED, now=now)

    return _apply_batch(db, records, lambda record: record.message_pk, fast, one)


def _insert_or_replace(session: Session, batch: Sequence[StufRecord], now: datetime) -> None:
    """``upsert_record`` for a batch: the new rows in one INSERT, a re-delivered message's row
    replaced on its own."""
    pks = [record.message_pk for record in batch]
    existing = set(
        session.execute(
            sa.select(stuf_message.c.message_pk).where(among(session, stuf_message.c.message_pk, pks))
        ).scalars()
    )
    fresh = [
        {**_stuf_values(record), "created_at": now, "updated_at": now}
        for record in batch
        if record.message_pk not in existing
    ]
    if fresh:
        session.execute(sa.insert(stuf_message), fresh)
    for record in batch:
        if record.message_pk in existing:
            upsert_record(session, record, now=now)


def _business_steps(
    session: Session, changes: Sequence[steps.BusinessChange], now: datetime, *, at_once: bool
) -> None:
    """The guarded business steps of a batch: on PostgreSQL, when they name distinct messages
    and keep no Fo01, the decision's SELECT and ONE statement (``finish_pg.steps_at_once``);
    otherwise ``transition_batch``."""
    pks = {change.message_pk for change in changes}
    if at_once and len(pks) == len(changes) and all(change.fout is None for change in changes):
        steps_at_once(session, changes, now=now, layer="business")
    else:
        steps.transition_batch(session, changes, now=now, layer="business")


def _stuf_values(record: StufRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in StufRecord.__dataclass_fields__}


@dataclass(frozen=True)
class Delivered:
    """A job whose message was handed to its target: the attempt to keep and the steps to take."""

    job_pk: int
    message_pk: int
    started_at: datetime
    finished_at: datetime
    http_status: int | None
    event: Event
    reason: str
    business: Sequence[steps.BusinessChange] = ()


def finish_delivered(db: Database, outcomes: Sequence[Delivered], *, now: datetime) -> list[int]:
    """Keep the attempts and complete the jobs of a batch of delivered messages in one transaction.

    The business steps are guarded steps of store/lifecycle.py (``_business_steps``); the
    attempts, the guarded ebMS steps and the job ends are those of the send worker's outcomes
    (``jobs.finish_many``), on PostgreSQL in ONE statement after the decision's SELECT
    (store/finish_pg.py). A job whose message another transaction made final meanwhile gives up
    its claim, as ``JobQueue.complete`` does. Returns the job pks whose steps failed (rolled back
    alone; the caller finishes them on the one-job path).
    """
    at_once = db.backend == "postgresql"

    def fast(session: Session, batch: Sequence[Delivered]) -> None:
        business = [change for outcome in batch for change in outcome.business]
        _business_steps(session, business, now, at_once=at_once)
        ends = [Outcome(o.job_pk, o.message_pk, "complete", o.event, o.reason) for o in batch]
        attempts = [
            NewAttempt(o.message_pk, o.job_pk, o.started_at, o.finished_at, "ok", o.http_status)
            for o in batch
        ]
        if at_once and len({o.message_pk for o in batch}) == len(batch):
            finish_at_once(session, ends, attempts, (), (), now=now)
        else:
            finish_many(session, ends, attempts, now=now)

    return _apply_batch(db, outcomes, lambda outcome: outcome.job_pk, fast, lambda s, o: fast(s, [o]))
