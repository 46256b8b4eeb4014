"""PostgreSQL without a pre-ping per checkout: a pooled connection that died is replaced, once.

The pool no longer pings a connection before every transaction (one round trip per message on
the receive path, docs/performance.md); ``Database.run`` tries a transaction again on a fresh
connection when the pooled one turns out to be dead. Errors that are not a dead connection are
not retried.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms.errors import DuplicateMessageError, StoreError
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from tests.test_store_messages import PARTS, ack_for, inbound

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_db(pg_schema_url: str) -> Iterator[Database]:
    database = Database(pg_schema_url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


def _pooled_backend_pid(database: Database) -> int:
    with database.session() as session:
        pid: int = session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def _kill_backend(url: str, pid: int) -> None:
    """Terminate one server process from outside and wait until PostgreSQL reports it gone."""
    admin = sa.create_engine(url)
    try:
        with admin.begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with admin.begin() as conn:
                alive = conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                ).scalar_one()
            if alive == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"backend {pid} still alive after pg_terminate_backend")
    finally:
        admin.dispose()


def test_receive_after_the_pooled_connection_died_is_stored_once(pg_db: Database, pg_schema_url: str) -> None:
    store = MessageStore(pg_db)
    store.receive(inbound("first@rinis"), PARTS, response=None, deliver=False, send_response_async=False)
    old_pid = _pooled_backend_pid(pg_db)
    assert _pooled_backend_pid(pg_db) == old_pid  # the pool hands out the same connection again

    _kill_backend(pg_schema_url, old_pid)

    result = store.receive(
        inbound("second@rinis"),
        PARTS,
        response=ack_for("second@rinis"),
        deliver=True,
        send_response_async=False,
    )
    stored = store.get(result.message_pk)
    assert stored.message_id == "second@rinis"
    assert result.response_pk is not None and store.get(result.response_pk).kind == "Acknowledgment"
    assert [p.data for p in store.parts(result.message_pk)] == [p.data for p in PARTS]
    assert _pooled_backend_pid(pg_db) != old_pid
    # Stored exactly once, and a copy is still a duplicate (the retry did not weaken the rule).
    with pytest.raises(DuplicateMessageError):
        store.receive(inbound("second@rinis"), PARTS, response=None, deliver=False, send_response_async=False)


def test_run_does_not_retry_other_errors(pg_db: Database) -> None:
    calls: list[int] = []

    def failing(session: Session) -> None:
        calls.append(1)
        session.execute(sa.text("SELECT * FROM no_such_table_here"))

    with pytest.raises(StoreError):
        pg_db.run(failing)
    assert calls == [1]


def test_run_commits_what_the_work_did(pg_db: Database) -> None:
    def write(session: Session) -> int:
        session.execute(sa.text("CREATE TABLE run_probe (v integer)"))
        session.execute(sa.text("INSERT INTO run_probe VALUES (7)"))
        return 7

    assert pg_db.run(write) == 7
    with pg_db.session() as session:
        assert session.execute(sa.text("SELECT v FROM run_probe")).scalar_one() == 7


def _statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement psycopg sends from now on (the checkout's liveness check included)."""
    import psycopg

    sent: list[str] = []
    real = psycopg.Cursor.execute

    def execute(self: psycopg.Cursor[object], query: object, *args: object, **kwargs: object) -> object:
        sent.append(str(query).strip())
        return real(self, query, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    return sent


def test_a_small_receive_is_its_own_liveness_check(pg_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path's one statement stands in for ``SELECT 1`` at checkout (Database.run_statement
    ``small``); any other checkout still pings first."""
    store = MessageStore(pg_db)
    store.receive(inbound("warm@rinis"), PARTS, response=None, deliver=False, send_response_async=False)
    sent = _statements(monkeypatch)
    store.receive(
        inbound("small@rinis"),
        PARTS,
        response=ack_for("small@rinis"),
        deliver=True,
        send_response_async=False,
    )
    assert len(sent) == 1 and "INSERT" in sent[0]  # one round trip: no SELECT 1 before it
    sent.clear()
    with pg_db.session() as session:
        session.execute(sa.text("SELECT 2"))
    assert sent[0] == "SELECT 1"  # a transaction's checkout is still checked


def test_a_small_receive_on_a_dead_pooled_connection_is_tried_once_more(
    pg_db: Database, pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MessageStore(pg_db)
    store.receive(inbound("before@rinis"), PARTS, response=None, deliver=False, send_response_async=False)
    _kill_backend(pg_schema_url, _pooled_backend_pid(pg_db))
    sent = _statements(monkeypatch)
    result = store.receive(
        inbound("after@rinis"), PARTS, response=None, deliver=False, send_response_async=False
    )
    assert store.get(result.message_pk).message_id == "after@rinis"
    assert sum("INSERT" in statement for statement in sent) == 2  # failed on the dead one, then stored
