"""A received message, its signal, parts, jobs and history in ONE PostgreSQL statement.

The receive transaction is round-trip bound (docs/performance.md "Where the time goes now"):
one INSERT per table, each waited for in turn. PostgreSQL runs data-modifying CTEs of one
statement together, so the message rows go in with ``INSERT ... RETURNING`` and the parts, jobs
and history rows take their keys from it in the same statement: BEGIN, one statement, COMMIT.
The rules of ``MessageStore.receive`` are unchanged: all or nothing (one statement inside its
transaction), and the UNIQUE (direction, message_id) constraint refuses a duplicate with an
IntegrityError before anything is stored. Being one statement, it runs in autocommit
(``Database.run_statement``): atomic and durable when it returns, without BEGIN and COMMIT.

Only the hot path uses it: received messages with at most one signal each and no large part.
When a received Acknowledgment or MessageError changes a message we sent, the statement runs
inside a transaction and the effects follow it before the commit (``MessageStore._write``).
Several receives go in one statement when they are committed as a group
(store/group_commit.py): the rows of each table then come from every member, and each row finds
its message by (direction, MessageId), the key the UNIQUE constraint guarantees. The rows are the
ones ``MessageStore`` builds; this module only joins them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms.store.pg_statement import Placeholders, Statement, execute_raw, quoted, values_list
from ggk_ebms.store.tables import job, message, message_event, message_part


@dataclass(frozen=True)
class RowSet:
    """Rows for one table, each tied to the message it belongs to by that message's direction
    ('in': a received message, 'out': our signal) and MessageId."""

    direction: str
    message_id: str
    values: Mapping[str, Any]


_Shape = tuple[tuple[int, tuple[str, ...]], ...]
_TABLES = (("p", message_part), ("j", job), ("e", message_event))


def keyed_values(
    table: sa.Table, prefix: str, count: int, columns: Sequence[str], params: Placeholders
) -> str:
    """``(VALUES (...), ...) AS <prefix>v(direction, message_id, columns...)``, a typed parameter
    per cell: rows that find their message by (direction, MessageId)."""
    rows = [
        [
            params.cast(f"{prefix}{i}_direction", sa.String()),
            params.cast(f"{prefix}{i}_message_id", sa.String()),
            *(params.typed(table, column, f"{prefix}{i}_{column}") for column in columns),
        ]
        for i in range(count)
    ]
    return f"({values_list(rows)}) AS {prefix}v(direction, message_id, {', '.join(map(quoted, columns))})"


def insert_keyed(
    alias: str, table: sa.Table, source: str, count: int, columns: Sequence[str], params: Placeholders
) -> str:
    """A CTE inserting ``count`` rows of ``table``, each with the key of its message from the
    CTE ``source`` (which returns pk, direction, message_id)."""
    values = keyed_values(table, alias, count, columns, params)
    return (
        f"{alias} AS (INSERT INTO {quoted(table.name)} (message_pk, {', '.join(map(quoted, columns))}) "  # noqa: S608
        f"SELECT {source}.pk, {', '.join(f'{alias}v.{quoted(c)}' for c in columns)} "
        f"FROM {source} JOIN {values} ON {alias}v.direction = {source}.direction "
        f"AND {alias}v.message_id = {source}.message_id)"
    )


@functools.lru_cache(maxsize=512)
def _statement(
    message_columns: tuple[str, ...], messages: int, shapes: _Shape, dialect: sa.Dialect
) -> Statement:
    """The statement for one shape (row counts and columns), built once per shape and dialect:
    per message only the parameters are put in order and converted."""
    # Every identifier below is a name from the table metadata (``table.c[...]`` refuses any
    # other); every value is a bound parameter. Hence the S608 exemptions.
    params = Placeholders()
    message_tuples = [
        [params.add(f"m{i}_{column}", message.c[column].type) for column in message_columns]
        for i in range(messages)
    ]
    ctes = [
        f"m AS (INSERT INTO {quoted(message.name)} ({', '.join(map(quoted, message_columns))}) "
        f"{values_list(message_tuples)} "
        "RETURNING pk, direction, message_id)"
    ]
    for (alias, table), (count, columns) in zip(_TABLES, shapes, strict=True):
        if count:
            ctes.append(insert_keyed(alias, table, "m", count, columns, params))
    return params.statement(f"WITH {', '.join(ctes)} SELECT pk, direction, message_id FROM m", dialect)  # noqa: S608


def insert_received(
    session: Session | sa.Connection,
    messages: Sequence[Mapping[str, Any]],
    parts: Sequence[RowSet],
    jobs: Sequence[RowSet],
    events: Sequence[RowSet],
) -> dict[tuple[str, str], int]:
    """Insert every row in one statement; returns the new message keys by (direction, MessageId).

    ``messages``: full message rows (distinct (direction, message_id)); the other rows name their
    message by direction and MessageId and leave out ``message_pk``.
    """
    message_columns = tuple(messages[0])
    connection = session.connection() if isinstance(session, Session) else session
    # The values in the order ``_statement`` writes its placeholders: every message row, then per
    # table every row's direction, MessageId and columns (Statement.bind_in_order).
    values: list[Any] = [row[column] for row in messages for column in message_columns]
    shapes = []
    for rows in (parts, jobs, events):
        columns = tuple(c for c in rows[0].values if c != "message_pk") if rows else ()
        shapes.append((len(rows), columns))
        for rowset in rows:
            values.append(rowset.direction)
            values.append(rowset.message_id)
            values.extend(rowset.values[column] for column in columns)
    statement = _statement(message_columns, len(messages), tuple(shapes), connection.dialect)
    return {(row.direction, row.message_id): row.pk for row in execute_raw(connection, statement, values)}
