"""The one-statement receive on PostgreSQL (store/receive_pg.py) stores what the statement per
table path stores on SQLite: the same messages, parts in order, jobs and first history entries."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ggk_ebms.clock import FixedClock
from ggk_ebms.errors import DuplicateMessageError
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore, NewPart
from tests.test_store_messages import T0, ack_for, inbound

pytestmark = pytest.mark.postgres

PARTS = [
    NewPart("<a@x>", "application/xml", b"<a>\x00\xff</a>"),
    NewPart("<b@x>", "application/pdf", b"%PDF"),
    NewPart("", "text/plain", b""),
]


@pytest.fixture
def pair(pg_schema_url: str, tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    pg, lite = Database(pg_schema_url), Database(f"sqlite:///{tmp_path / 'ref.db'}")
    for database in (pg, lite):
        database.upgrade()
    assert pg.backend == "postgresql"
    try:
        yield pg, lite
    finally:
        pg.dispose()
        lite.dispose()


def _everything(database: Database, message_pk: int, response_pk: int | None) -> dict[str, Any]:
    store, queue = MessageStore(database), JobQueue(database)
    found: dict[str, Any] = {}
    for name, pk in (("message", message_pk), ("response", response_pk)):
        if pk is None:
            continue
        stored = store.get(pk)
        found[name] = dataclasses.replace(stored, pk=0)
        found[name + "_parts"] = [
            (p.seq, p.content_id, p.content_type, p.data, p.sha256, p.size) for p in store.parts(pk)
        ]
        found[name + "_jobs"] = [(j.queue, j.status, j.due_at, j.attempts) for j in queue.jobs_for(pk)]
        found[name + "_history"] = store.history(pk)
    return found


@pytest.mark.parametrize(
    ("with_response", "deliver", "send_async"),
    [
        (True, True, False),
        (True, True, True),
        (True, False, True),
        (False, True, False),
        (False, False, False),
    ],
)
def test_one_statement_stores_what_the_statement_per_table_path_stores(
    pair: tuple[Database, Database], with_response: bool, deliver: bool, send_async: bool
) -> None:
    results = []
    for database in pair:
        store = MessageStore(database, FixedClock(T0))
        result = store.receive(
            inbound(),
            PARTS,
            response=ack_for("m1@rinis") if with_response else None,
            deliver=deliver,
            send_response_async=send_async,
        )
        results.append(_everything(database, result.message_pk, result.response_pk))
    on_postgres, on_sqlite = results
    assert on_postgres == on_sqlite
    assert len(on_postgres["message_parts"]) == len(PARTS)
    assert ("response" in on_postgres) is with_response


def test_a_duplicate_stores_nothing_in_one_statement(pair: tuple[Database, Database]) -> None:
    pg, _ = pair
    store, queue = MessageStore(pg, FixedClock(T0)), JobQueue(pg)
    first = store.receive(
        inbound(), PARTS, response=ack_for("m1@rinis"), deliver=True, send_response_async=False
    )
    with pytest.raises(DuplicateMessageError):
        store.receive(
            inbound(),
            PARTS,
            response=ack_for("m1@rinis", "ack-2@gemeente"),
            deliver=True,
            send_response_async=False,
        )
    assert store.find("out", "ack-2@gemeente") is None
    assert len(queue.jobs_for(first.message_pk)) == 1
    assert len(store.parts(first.message_pk)) == len(PARTS)


def test_the_connection_goes_back_to_the_pool_with_its_ordinary_cursors(
    pair: tuple[Database, Database],
) -> None:
    """The statement runs on a RawCursor (``$n`` placeholders); the connection it borrowed
    must come back with psycopg's ordinary cursor, also after a refused duplicate."""
    import psycopg

    pg, _ = pair
    store = MessageStore(pg, FixedClock(T0))
    store.receive(inbound(), PARTS, response=ack_for("m1@rinis"), deliver=True, send_response_async=False)
    with pytest.raises(DuplicateMessageError):
        store.receive(inbound(), PARTS, response=None, deliver=False, send_response_async=False)
    pooled = pg.engine.raw_connection()
    try:
        assert isinstance(pooled.driver_connection, psycopg.Connection)
        assert pooled.driver_connection.cursor_factory is psycopg.Cursor
    finally:
        pooled.close()
    assert store.find("in", inbound().message_id) is not None  # an ordinary query still works
