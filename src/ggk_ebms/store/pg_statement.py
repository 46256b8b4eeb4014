"""Long PostgreSQL statements written with native ``$n`` placeholders and run as they are.

The hot paths write a whole group's rows in one statement of data-modifying CTEs (store/
receive_pg.py for a receive, store/finish_pg.py for the send worker's outcomes). Such a
statement is long (one VALUES tuple per row), and psycopg converts named placeholders by parsing
the query text on every execution when a query is longer than it caches (4,096 characters or 50
parameters, psycopg ``_queries.py``): 7% of the request path's CPU in the profile of
docs/performance.md ("Native placeholders"). Written with ``$n`` once per shape and run by
psycopg's RawCursor, the text goes to the server as it is.
"""

from __future__ import annotations

import functools
import operator
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]

Processor = Callable[[Any], Any] | None


def quoted(name: str) -> str:
    return f'"{name}"'


def sql_type(type_: sa.types.TypeEngine[Any]) -> str:
    return str(type_.compile(dialect=DIALECT))


class Placeholders:
    """The statement's parameters in order: ``add`` answers PostgreSQL's own ``$n`` for each."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.types: list[sa.types.TypeEngine[Any]] = []

    def add(self, name: str, type_: sa.types.TypeEngine[Any]) -> str:
        self.names.append(name)
        self.types.append(type_)
        return f"${len(self.names)}"

    def cast(self, name: str, type_: sa.types.TypeEngine[Any]) -> str:
        # The CAST tells PostgreSQL the type inside VALUES, where it cannot infer it from a
        # target column; the bind processor (UtcDateTime's conversion) runs in ``Statement.bind``.
        return f"CAST({self.add(name, type_)} AS {sql_type(type_)})"

    def typed(self, table: sa.Table, column: str, name: str) -> str:
        return self.cast(name, table.c[column].type)

    def statement(self, text: str, dialect: sa.Dialect) -> Statement:
        return Statement(text, tuple(self.names), tuple(t.bind_processor(dialect) for t in self.types))


@dataclass(frozen=True)
class Statement:
    """One shape's statement text and, per ``$n``, its parameter's name and bind processor."""

    text: str
    names: tuple[str, ...]
    processors: tuple[Processor, ...]

    def bind(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """The values in ``$n`` order, each through its bind processor (a missing name raises
        KeyError). One C-level lookup of every name, then the few processors: the outcome
        statements bind hundreds of parameters per batch."""
        if not self.names:
            return ()
        found = self._lookup(params)  # one value, not a tuple, for a single name
        return tuple(self.bind_in_order(found if len(self.names) > 1 else (found,)))

    @functools.cached_property
    def _lookup(self) -> Callable[[dict[str, Any]], Any]:
        return operator.itemgetter(*self.names)

    @functools.cached_property
    def _processed(self) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
        return tuple((i, p) for i, p in enumerate(self.processors) if p is not None)

    def row_maker(self, cursor: Any) -> Callable[[Sequence[Any]], Any]:
        """psycopg's row factory for this statement: its rows as named tuples (``row.pk``).

        psycopg's own ``namedtuple_row`` reads the result's column names and looks up a
        namedtuple class on every execution, and checks each row's length in Python; here the
        class is made at the first execution and kept with the statement, whose text fixes the
        columns it returns, and each row is ``tuple.__new__`` in C (docs/performance.md,
        round 11).
        """
        maker: Callable[[Sequence[Any]], Any] | None = self.__dict__.get("_row_maker")
        if maker is None:
            if cursor.description is None:  # psycopg asks for a maker after any result
                return _no_rows
            names = [column.name for column in cursor.description]
            row = namedtuple("Row", names, rename=True)  # type: ignore[misc]
            maker = functools.partial(tuple.__new__, row)
            # Kept as functools.cached_property keeps its value: in the instance's own dict,
            # which a frozen dataclass leaves writable.
            self.__dict__["_row_maker"] = maker
        return maker

    def bind_in_order(self, values: Sequence[Any]) -> list[Any]:
        """``values`` given in ``$n`` order already (the caller walks the shape in the order the
        statement was written), each through its bind processor: no parameter name is made or
        looked up, which for the receive statement's few hundred parameters is most of binding."""
        if len(values) != len(self.names):
            raise ValueError(f"{len(values)} values for a statement of {len(self.names)} parameters")
        bound = list(values)
        for i, processor in self._processed:
            bound[i] = processor(bound[i])
        return bound


def _no_rows(values: Sequence[Any]) -> Any:
    raise TypeError("the statement returned no rows to make")


def values_list(rows: Sequence[Sequence[str]]) -> str:
    """``VALUES (...), (...)`` of placeholder cells."""
    return "VALUES " + ", ".join("(" + ", ".join(cells) + ")" for cells in rows)


def execute_raw(
    connection: sa.Connection, statement: Statement, params: dict[str, Any] | list[Any]
) -> list[Any]:
    """Run ``statement`` on a psycopg RawCursor of ``connection``; the rows it returns (named
    tuples: ``row.pk``). ``params``: by name, or a list already in ``$n`` order
    (``Statement.bind_in_order``).

    The statement goes through SQLAlchemy's ``Connection._cursor_execute``: the engine's
    ``before/after_cursor_execute`` events arm and disarm the round-trip watchdog
    (store/db.py), a DBAPI error becomes SQLAlchemy's (``IntegrityError`` for a UNIQUE conflict)
    and a dead connection is invalidated, so ``Database.run``'s one retry still applies. What it
    leaves out is the ExecutionContext and CursorResult that ``exec_driver_sql`` builds around
    every execution, which for a statement whose rows are read once cost more than running it
    (docs/performance.md, round 10).
    """
    import psycopg  # here, not at the top: 170 ms of import for every CLI command otherwise

    raw = connection.connection.dbapi_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError(f"a one-statement write needs psycopg, not {type(raw).__module__}")
    if not raw.autocommit and not connection.in_transaction():
        # psycopg would open a transaction SQLAlchemy does not know of, and the pool's reset
        # would roll the write back when the connection is returned: refuse instead.
        raise ValueError("execute_raw needs a connection in a transaction or in autocommit")
    bound = statement.bind(params) if isinstance(params, dict) else statement.bind_in_order(params)
    cursor = psycopg.RawCursor(raw, row_factory=statement.row_maker)
    try:
        connection._cursor_execute(cursor, statement.text, tuple(bound))
        # The result's status, not ``cursor.description``, which builds a Column per field.
        result = cursor.pgresult
        if result is None or result.status != psycopg.pq.ExecStatus.TUPLES_OK:
            return []
        return cursor.fetchall()
    finally:
        cursor.close()
