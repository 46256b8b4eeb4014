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
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from ggk_ebms.store.tables import job, message, message_event, message_part

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _q(name: str) -> str:
    return f'"{name}"'


@dataclass(frozen=True)
class RowSet:
    """Rows for one table, each tied to the message it belongs to by that message's direction
    ('in': a received message, 'out': our signal) and MessageId."""

    direction: str
    message_id: str
    values: Mapping[str, Any]


def _typed(table: sa.Table, column: str, name: str, binds: list[sa.BindParameter[Any]]) -> str:
    # The bind carries the column type (UtcDateTime's conversion, bytea), the CAST tells
    # PostgreSQL the type inside VALUES, where it cannot infer it from the target column.
    col_type = table.c[column].type
    binds.append(sa.bindparam(name, type_=col_type))
    return f"CAST(:{name} AS {col_type.compile(dialect=_DIALECT)})"


_Shape = tuple[tuple[int, tuple[str, ...]], ...]
_TABLES = (("p", message_part), ("j", job), ("e", message_event))


def _values(
    table: sa.Table, prefix: str, count: int, columns: Sequence[str], binds: list[sa.BindParameter[Any]]
) -> str:
    """``(VALUES (...), ...) AS v(direction, message_id, columns...)``, a typed parameter per cell."""
    tuples = []
    for i in range(count):
        direction, message_id = f"{prefix}{i}_direction", f"{prefix}{i}_message_id"
        binds.append(sa.bindparam(direction, type_=sa.String()))
        binds.append(sa.bindparam(message_id, type_=sa.String()))
        cells = [f"CAST(:{direction} AS VARCHAR)", f"CAST(:{message_id} AS VARCHAR)"]
        cells.extend(_typed(table, column, f"{prefix}{i}_{column}", binds) for column in columns)
        tuples.append("(" + ", ".join(cells) + ")")
    return f"(VALUES {', '.join(tuples)}) AS {prefix}v(direction, message_id, {', '.join(map(_q, columns))})"


@functools.lru_cache(maxsize=512)
def _statement(message_columns: tuple[str, ...], messages: int, shapes: _Shape) -> sa.TextClause:
    """The statement for one shape (row counts and columns), built once: SQLAlchemy then finds
    its compiled form in its cache, and only the parameters change per message."""
    # Every identifier below is a name from the table metadata (``table.c[...]`` refuses any
    # other); every value is a bound parameter. Hence the S608 exemptions.
    binds: list[sa.BindParameter[Any]] = []
    message_tuples = []
    for i in range(messages):
        names = []
        for column in message_columns:
            name = f"m{i}_{column}"
            binds.append(sa.bindparam(name, type_=message.c[column].type))
            names.append(f":{name}")
        message_tuples.append("(" + ", ".join(names) + ")")
    ctes = [
        f"m AS (INSERT INTO {_q(message.name)} ({', '.join(map(_q, message_columns))}) "  # noqa: S608
        f"VALUES {', '.join(message_tuples)} "
        "RETURNING pk, direction, message_id)"
    ]
    for (alias, table), (count, columns) in zip(_TABLES, shapes, strict=True):
        if not count:
            continue
        values = _values(table, alias, count, columns, binds)
        ctes.append(
            f"{alias} AS (INSERT INTO {_q(table.name)} (message_pk, {', '.join(map(_q, columns))}) "  # noqa: S608
            f"SELECT m.pk, {', '.join(f'{alias}v.{_q(c)}' for c in columns)} "
            f"FROM m JOIN {values} ON {alias}v.direction = m.direction "
            f"AND {alias}v.message_id = m.message_id)"
        )
    return sa.text(f"WITH {', '.join(ctes)} SELECT pk, direction, message_id FROM m").bindparams(*binds)  # noqa: S608


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
    params: dict[str, Any] = {}
    for i, row in enumerate(messages):
        for column in message_columns:
            params[f"m{i}_{column}"] = row[column]
    shapes = []
    for (alias, _table), rows in zip(_TABLES, (parts, jobs, events), strict=True):
        columns = tuple(c for c in rows[0].values if c != "message_pk") if rows else ()
        shapes.append((len(rows), columns))
        for i, rowset in enumerate(rows):
            params[f"{alias}{i}_direction"] = rowset.direction
            params[f"{alias}{i}_message_id"] = rowset.message_id
            for column in columns:
                params[f"{alias}{i}_{column}"] = rowset.values[column]
    statement = _statement(message_columns, len(messages), tuple(shapes))
    return {(row.direction, row.message_id): row.pk for row in session.execute(statement, params)}
