"""``Statement.bind_in_order`` (values given in ``$n`` order, as the receive statement builds
them) binds exactly what ``Statement.bind`` (values by name) binds, bind processors included;
``execute_raw`` on PostgreSQL: named rows, SQLAlchemy's errors and events, the caller's
transaction or ``run_statement``'s autocommit, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from ggk_ebms.errors import StoreError
from ggk_ebms.store.db import Database, in_autocommit
from ggk_ebms.store.pg_statement import DIALECT, Placeholders, Statement, execute_raw, values_list
from ggk_ebms.store.tables import message


def test_values_in_order_bind_as_values_by_name() -> None:
    params = Placeholders()
    columns = ("message_id", "created_at", "direction", "updated_at")
    for i in range(3):
        for column in columns:
            params.add(f"m{i}_{column}", message.c[column].type)
    statement = params.statement("SELECT 1", DIALECT)
    # UtcDateTime's processor turns the aware datetimes into what the column stores.
    assert sum(p is not None for p in statement.processors) == 6
    rows = [
        {
            "message_id": f"<{i}@x>",
            "created_at": datetime(2026, 12, 6, i, tzinfo=UTC),
            "direction": "in",
            "updated_at": datetime(2026, 12, 7, i, tzinfo=UTC),
        }
        for i in range(3)
    ]
    by_name = {f"m{i}_{c}": row[c] for i, row in enumerate(rows) for c in columns}
    in_order = [row[c] for row in rows for c in columns]
    assert statement.bind_in_order(in_order) == list(statement.bind(by_name))
    with pytest.raises(ValueError, match="11 values for a statement of 12 parameters"):
        statement.bind_in_order(in_order[:-1])


def test_bind_by_name_for_no_one_and_many_parameters() -> None:
    assert Placeholders().statement("SELECT 1", DIALECT).bind({"extra": 1}) == ()
    one = Placeholders()
    one.typed(message, "created_at", "at")
    moment = datetime(2026, 12, 6, 13, tzinfo=UTC)
    (bound,) = one.statement("SELECT $1", DIALECT).bind({"at": moment, "unused": 2})
    processor = message.c.created_at.type.bind_processor(DIALECT)
    assert processor is not None and bound == processor(moment)
    two = Placeholders()
    two.add("a", message.c.message_id.type)
    two.add("b", message.c.direction.type)
    statement = two.statement("SELECT $1, $2", DIALECT)
    assert statement.bind({"b": "in", "a": "<x@y>"}) == ("<x@y>", "in")
    with pytest.raises(KeyError, match="b"):
        statement.bind({"a": "<x@y>"})


@pytest.fixture
def pg(pg_schema_url: str) -> Iterator[Database]:
    database = Database(pg_schema_url)
    probe.create(database.engine)
    try:
        yield database
    finally:
        database.dispose()


probe = sa.Table("raw_probe", sa.MetaData(), sa.Column("pk", sa.BigInteger, primary_key=True))


def _insert(pks: list[int]) -> Statement:
    params = Placeholders()
    cells = [[params.typed(probe, "pk", f"p{i}")] for i in range(len(pks))]
    return params.statement(f"INSERT INTO raw_probe (pk) {values_list(cells)} RETURNING pk", DIALECT)


def _count(database: Database) -> int:
    with database.connection() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(probe)).scalar_one())


@pytest.mark.postgres
def test_raw_statement_in_a_transaction_returns_named_rows_and_commits_with_it(pg: Database) -> None:
    with pg.session() as session:
        rows = execute_raw(session.connection(), _insert([1, 2]), {"p0": 1, "p1": 2})
        assert sorted(row.pk for row in rows) == [1, 2]
        session.rollback()
    assert _count(pg) == 0  # the session's transaction held it
    with pg.session() as session:
        execute_raw(session.connection(), _insert([3]), [3])
    assert _count(pg) == 1


@pytest.mark.postgres
def test_raw_statement_errors_are_sqlalchemys_and_fire_the_engine_events(pg: Database) -> None:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(pg.engine, "after_cursor_execute", note)
    try:
        assert pg.run_statement(lambda conn: execute_raw(conn, _insert([7]), [7]), small=True)[0].pk == 7
        assert seen == [_insert([7]).text]  # the watchdog's events ran around it (store/db.py)
        with pytest.raises(StoreError, match="UniqueViolation"):
            pg.run_statement(lambda conn: execute_raw(conn, _insert([7]), [7]))
        with pg.session() as session, pytest.raises(sa.exc.IntegrityError):
            execute_raw(session.connection(), _insert([7]), [7])
    finally:
        sa.event.remove(pg.engine, "after_cursor_execute", note)
    assert _count(pg) == 1  # the statement in autocommit was its own commit


@pytest.mark.postgres
def test_run_statement_leaves_the_pooled_connection_as_it_found_it(pg: Database) -> None:
    returned: list[bool] = []

    def checkin(dbapi_connection: Any, _record: Any) -> None:
        returned.append(dbapi_connection.autocommit)

    def inside(conn: sa.Connection) -> bool:
        assert in_autocommit(conn)
        return True

    sa.event.listen(pg.engine, "checkin", checkin)
    try:
        assert pg.run_statement(inside)
        assert pg.run_statement(inside, small=True)  # no liveness check at this checkout
        with pytest.raises(StoreError):
            pg.run_statement(lambda conn: execute_raw(conn, _insert([1, 1]), [1, 1]))
    finally:
        sa.event.remove(pg.engine, "checkin", checkin)
    assert returned == [False, False, False]  # back in the pool out of autocommit, every time
    with pg.engine.connect() as conn:
        assert not in_autocommit(conn)


@pytest.mark.postgres
def test_a_raw_statement_outside_a_transaction_is_refused(pg: Database) -> None:
    # psycopg would begin a transaction SQLAlchemy does not know of; the pool would roll it back.
    with pg.engine.connect() as conn, pytest.raises(ValueError, match="in a transaction or in autocommit"):
        execute_raw(conn, _insert([9]), [9])
    assert _count(pg) == 0


@pytest.mark.postgres
def test_rows_are_named_after_the_statements_columns_and_made_by_one_kept_class(pg: Database) -> None:
    params = Placeholders()
    cells = [[params.typed(probe, "pk", f"p{i}")] for i in range(2)]
    # A second column, one name that is no Python identifier, and a name taken twice.
    statement = params.statement(
        f"INSERT INTO raw_probe (pk) {values_list(cells)} RETURNING pk, pk * 10 AS tenfold, "
        'pk AS "not a name", pk AS pk',
        DIALECT,
    )
    with pg.session() as session:
        first = execute_raw(session.connection(), statement, [1, 2])
        second = execute_raw(session.connection(), _insert([5]), [5])
        session.rollback()
    assert [(row.pk, row.tenfold) for row in first] == [(1, 10), (2, 20)]
    assert [tuple(row) for row in first] == [(1, 10, 1, 1), (2, 20, 2, 2)]
    assert first[0]._fields == ("pk", "tenfold", "_2", "_3")  # renamed, as namedtuple renames
    assert [row.pk for row in second] == [5]
    with pg.session() as session:
        again = execute_raw(session.connection(), statement, [3, 4])
    assert type(again[0]) is type(first[0])  # the class was made once, at the first execution
    assert type(second[0]) is not type(first[0])  # each statement has its own


@pytest.mark.postgres
def test_a_statement_that_returns_no_rows_gives_an_empty_list(pg: Database) -> None:
    params = Placeholders()
    cell = params.typed(probe, "pk", "p")
    statement = params.statement(f"INSERT INTO raw_probe (pk) VALUES ({cell})", DIALECT)
    for pk in (1, 2):  # the second time as well: nothing was kept from the first
        assert pg.run_statement(lambda conn, pk=pk: execute_raw(conn, statement, [pk])) == []
    assert _count(pg) == 2
    returning_none = Placeholders()
    empty = returning_none.statement(
        f"DELETE FROM raw_probe WHERE pk = {returning_none.typed(probe, 'pk', 'p')} RETURNING pk", DIALECT
    )
    assert pg.run_statement(lambda conn: execute_raw(conn, empty, [99])) == []
    assert [row.pk for row in pg.run_statement(lambda conn: execute_raw(conn, empty, [1]))] == [1]
