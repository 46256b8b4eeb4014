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
from collections.abc import Callable, Mapping, Sequence
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


class _Placeholders:
    """The statement's parameters in order: ``add`` answers PostgreSQL's own ``$n`` for each.

    The statement is long (one VALUES tuple per row of the group), and psycopg converts named
    placeholders by parsing the query text on every execution when a query is longer than it
    caches (4,096 characters or 50 parameters, psycopg ``_queries.py``): 7% of the request
    path's CPU in the profile of docs/performance.md ("Native placeholders"). Written with
    ``$n`` and run by psycopg's RawCursor, the text goes to the server as it is.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.types: list[sa.types.TypeEngine[Any]] = []

    def add(self, name: str, type_: sa.types.TypeEngine[Any]) -> str:
        self.names.append(name)
        self.types.append(type_)
        return f"${len(self.names)}"

    def typed(self, table: sa.Table, column: str, name: str) -> str:
        # The CAST tells PostgreSQL the type inside VALUES, where it cannot infer it from the
        # target column; the bind processor (UtcDateTime's conversion) runs in ``insert_received``.
        col_type = table.c[column].type
        return f"CAST({self.add(name, col_type)} AS {col_type.compile(dialect=_DIALECT)})"


_Shape = tuple[tuple[int, tuple[str, ...]], ...]
_TABLES = (("p", message_part), ("j", job), ("e", message_event))
_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Statement:
    """One shape's statement text and, per ``$n``, its parameter's name and bind processor."""

    text: str
    names: tuple[str, ...]
    processors: tuple[_Processor, ...]


def _values(table: sa.Table, prefix: str, count: int, columns: Sequence[str], params: _Placeholders) -> str:
    """``(VALUES (...), ...) AS v(direction, message_id, columns...)``, a typed parameter per cell."""
    tuples = []
    for i in range(count):
        cells = [
            f"CAST({params.add(f'{prefix}{i}_direction', sa.String())} AS VARCHAR)",
            f"CAST({params.add(f'{prefix}{i}_message_id', sa.String())} AS VARCHAR)",
        ]
        cells.extend(params.typed(table, column, f"{prefix}{i}_{column}") for column in columns)
        tuples.append("(" + ", ".join(cells) + ")")
    return f"(VALUES {', '.join(tuples)}) AS {prefix}v(direction, message_id, {', '.join(map(_q, columns))})"


@functools.lru_cache(maxsize=512)
def _statement(
    message_columns: tuple[str, ...], messages: int, shapes: _Shape, dialect: sa.Dialect
) -> _Statement:
    """The statement for one shape (row counts and columns), built once per shape and dialect:
    per message only the parameters are put in order and converted."""
    # Every identifier below is a name from the table metadata (``table.c[...]`` refuses any
    # other); every value is a bound parameter. Hence the S608 exemptions.
    params = _Placeholders()
    message_tuples = []
    for i in range(messages):
        cells = (params.add(f"m{i}_{column}", message.c[column].type) for column in message_columns)
        message_tuples.append("(" + ", ".join(cells) + ")")
    ctes = [
        f"m AS (INSERT INTO {_q(message.name)} ({', '.join(map(_q, message_columns))}) "  # noqa: S608
        f"VALUES {', '.join(message_tuples)} "
        "RETURNING pk, direction, message_id)"
    ]
    for (alias, table), (count, columns) in zip(_TABLES, shapes, strict=True):
        if not count:
            continue
        values = _values(table, alias, count, columns, params)
        ctes.append(
            f"{alias} AS (INSERT INTO {_q(table.name)} (message_pk, {', '.join(map(_q, columns))}) "  # noqa: S608
            f"SELECT m.pk, {', '.join(f'{alias}v.{_q(c)}' for c in columns)} "
            f"FROM m JOIN {values} ON {alias}v.direction = m.direction "
            f"AND {alias}v.message_id = m.message_id)"
        )
    return _Statement(
        f"WITH {', '.join(ctes)} SELECT pk, direction, message_id FROM m",  # noqa: S608
        tuple(params.names),
        tuple(t.bind_processor(dialect) for t in params.types),
    )


def _execute_raw(
    connection: sa.Connection, statement: _Statement, values: tuple[Any, ...]
) -> list[sa.Row[Any]]:
    """Run ``statement`` through SQLAlchemy (its error translation, its connection invalidation,
    the pool's deadlines), on a RawCursor of the psycopg connection it holds."""
    import psycopg  # here, not at the top: 170 ms of import for every CLI command otherwise

    raw = connection.connection.dbapi_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError(f"the one-statement receive needs psycopg, not {type(raw).__module__}")
    previous = raw.cursor_factory
    raw.cursor_factory = psycopg.RawCursor
    try:
        return list(connection.exec_driver_sql(statement.text, values))
    finally:
        raw.cursor_factory = previous


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
    statement = _statement(message_columns, len(messages), tuple(shapes), connection.dialect)
    values = tuple(
        params[name] if processor is None else processor(params[name])
        for name, processor in zip(statement.names, statement.processors, strict=True)
    )
    return {(row.direction, row.message_id): row.pk for row in _execute_raw(connection, statement, values)}
