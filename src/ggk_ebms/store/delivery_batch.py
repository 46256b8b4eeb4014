"""Batch reads and writes of the delivery worker: one statement or one transaction for many jobs.

The worker claims up to ``delivery_batch`` 'deliver' jobs in one statement (``JobQueue.claim``:
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite). This module then

- reads the claimed messages and their parts in two statements (``load``), instead of two
  sessions per message;
- writes the stuurgegevens of the batch (``record_stuf``) and the outcomes of the batch
  (``finish_delivered``) each in ONE transaction.

Every status change in those transactions is still a guarded lifecycle step of
``store/lifecycle.py`` (``transition``/``business_transition``: ``UPDATE ... WHERE status =
:expected``), one per message, exactly the steps the one-job path takes. Each message's steps run
inside a SAVEPOINT of their own: a step that fails (an illegal transition, a row gone) rolls back
that message's steps only and is reported back, so the other messages of the batch still reach
their own outcome in the same commit (docs/delivery.md "Batches").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms import lifecycle
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.lifecycle import Event
from ggk_ebms.store import lifecycle as steps
from ggk_ebms.store.db import Database
from ggk_ebms.store.large_parts import PART_SLICE, read_part_data
from ggk_ebms.store.messages import StoredMessage, _row_to_message
from ggk_ebms.store.stuf import StufRecord, upsert_record
from ggk_ebms.store.tables import attempt, job, message, message_part


@dataclass(frozen=True)
class Loaded:
    """The claimed messages and the data of their parts (in MIME order), by message pk."""

    messages: dict[int, StoredMessage]
    parts: dict[int, list[bytes]]


def load(db: Database, message_pks: Sequence[int]) -> Loaded:
    """The messages and their parts in one session and two statements.

    Parts above ``PART_SLICE`` are left out of the bulk read and fetched in slices, as
    ``MessageStore.parts`` does (store/large_parts.py): a 25 MB part never travels as hex text.
    """
    pks = sorted(set(message_pks))
    if not pks:
        return Loaded({}, {})
    small = sa.case((message_part.c.size <= PART_SLICE, message_part.c.data), else_=sa.null())
    with db.session() as session:
        messages = {
            row.pk: _row_to_message(row)
            for row in session.execute(sa.select(message).where(message.c.pk.in_(pks))).all()
        }
        rows = session.execute(
            sa.select(message_part.c.pk, message_part.c.message_pk, message_part.c.size, small.label("data"))
            .where(message_part.c.message_pk.in_(pks))
            .order_by(message_part.c.message_pk, message_part.c.seq)
        ).all()
        parts: dict[int, list[bytes]] = {pk: [] for pk in pks}
        for row in rows:
            if row.size > PART_SLICE:
                data = read_part_data(session, row.pk, row.size)
            else:
                data = b"" if row.data is None else bytes(row.data)
            parts[row.message_pk].append(data)
    return Loaded(messages, parts)


def record_stuf(db: Database, records: Sequence[StufRecord], *, now: datetime) -> list[int]:
    """Store the stuurgegevens of a batch and apply STUF_RECEIVED to each, in one transaction.

    Returns the message pks whose step failed (rolled back to their savepoint; the caller
    handles them one by one). A failure of the transaction itself raises ``StoreError``.
    """
    failed: list[int] = []
    with db.session() as session:
        for record in records:
            try:
                with session.begin_nested():
                    upsert_record(session, record, now=now)
                    steps.business_transition(session, record.message_pk, Event.STUF_RECEIVED, now=now)
            except (GgkEbmsError, sa.exc.SQLAlchemyError):
                failed.append(record.message_pk)
    return failed


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


_DONE: dict[str, Any] = {"status": "done", "last_error": None}


def finish_delivered(db: Database, outcomes: Sequence[Delivered], *, now: datetime) -> list[int]:
    """Keep the attempts and complete the jobs of a batch of delivered messages in one transaction.

    Per message, inside its own savepoint and in the order ``JobQueue.complete`` uses: the
    attempt row, the business steps, the guarded ebMS step, the job row. A job whose steps fail
    is rolled back to its savepoint and its pk returned, so the caller finishes it on the
    one-job path; the rest commit together.
    """
    failed: list[int] = []
    with db.session() as session:
        for outcome in outcomes:
            try:
                with session.begin_nested():
                    _finish_one(session, outcome, now)
            except (GgkEbmsError, sa.exc.SQLAlchemyError):
                failed.append(outcome.job_pk)
    return failed


def _finish_one(session: Session, outcome: Delivered, now: datetime) -> None:
    session.execute(
        sa.insert(attempt).values(
            message_pk=outcome.message_pk,
            job_pk=outcome.job_pk,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
            outcome="ok",
            http_status=outcome.http_status,
            error=None,
        )
    )
    for change in outcome.business:
        steps.apply_business(session, change, now=now)
    step = steps.transition(session, outcome.message_pk, outcome.event, now=now, reason=outcome.reason)
    values = dict(_DONE)
    if not step.writes and lifecycle.is_final(step.flow, step.target):
        # As JobQueue._finish: a final state another transaction wrote is kept, and the job is done.
        values = {**values, "claimed_by": None, "claimed_at": None}
    session.execute(sa.update(job).where(job.c.pk == outcome.job_pk).values(**values, updated_at=now))
