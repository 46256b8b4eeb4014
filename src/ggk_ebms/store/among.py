"""``column IN (values)`` for a batch's keys, as ONE array parameter on PostgreSQL.

SQLAlchemy writes ``IN`` over a list as one placeholder per value ("expanding" parameters), so the
statement text changes with the batch's size and is rendered again on every execution; psycopg
then parses that text again too, since a statement with more than 50 parameters is past its
cache (psycopg ``_queries.py``), and never prepares it. The delivery worker's batch asked four
such questions per 50 messages (docs/performance.md "Fixed statement texts and the outline in C").
``column = ANY(:values)`` has one text for every batch: SQLAlchemy compiles it once, psycopg
converts it once and prepares it after a few executions. SQLite has no arrays and keeps ``IN``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session


def is_postgresql(session: Session | sa.Connection) -> bool:
    bind = session.get_bind() if isinstance(session, Session) else session
    return bind.dialect.name == "postgresql"


def among(
    session: Session | sa.Connection, column: sa.ColumnElement[Any], values: Collection[Any]
) -> sa.ColumnElement[bool]:
    """``column IN values`` for the database ``session`` talks to (the same rows either way)."""
    if is_postgresql(session):
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)
