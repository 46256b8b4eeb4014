"""Figures for the console dashboard: business messages per day and direction, open jobs."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Final

import sqlalchemy as sa

from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import job, message, stuf_message

# Days are bucketed in Python: date functions differ between SQLite and PostgreSQL, and the rows
# read are two columns of at most this many messages.
MAX_ROWS: Final = 200_000


def per_day(
    db: Database,
    since: datetime,
    berichttypes: tuple[str, ...],
    gemeentecodes: frozenset[str] | None = None,
) -> Counter[tuple[date, str]]:
    """(day, direction) -> count of business messages of these berichttypes since ``since``,
    of these gemeentecodes only when given (None: every gemeente)."""
    query = (
        sa.select(message.c.created_at, message.c.direction)
        .select_from(message)
        .join(stuf_message, stuf_message.c.message_pk == message.c.pk)
        .where(
            message.c.created_at >= since,
            message.c.kind == "business",
            stuf_message.c.berichttype.in_(berichttypes),
        )
        .limit(MAX_ROWS)
    )
    if gemeentecodes is not None:
        query = query.where(stuf_message.c.gemeentecode.in_(sorted(gemeentecodes)))
    with db.session() as session:
        rows = session.execute(query).all()
    counts: Counter[tuple[date, str]] = Counter()
    for row in rows:
        counts[(row.created_at.date(), row.direction)] += 1
    return counts


def open_jobs(db: Database) -> dict[str, int]:
    """Queue depth: pending or running jobs per queue."""
    query = (
        sa.select(job.c.queue, sa.func.count())
        .where(job.c.status.in_(("pending", "running")))
        .group_by(job.c.queue)
    )
    with db.session() as session:
        return {str(q): int(n) for q, n in session.execute(query).all()}
