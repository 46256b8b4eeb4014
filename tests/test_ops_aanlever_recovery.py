"""Aanleveringen left Bezig by a crash become Onderbroken (``services.aanleveren.onderbroken``, run
by ``serve``); the files already queued are not queued again, also when the ZIP is uploaded again.
On SQLite and PostgreSQL; the schema change of revision 0015 goes both ways."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ggk_ebms.services import aanleveren
from ggk_ebms.services.aanleveren import Upload
from ggk_ebms.services.audit import AuditQuery, list_audit
from ggk_ebms.store.aanlevering import BatchStore
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.store.tables import aanlever_batch
from tests.ops_support import Ops, make_zip, ops_context, ops_settings, wmo301

IDLE = timedelta(minutes=10)


@pytest.fixture
def ops(db: Database, db_url: str, tmp_path: Path) -> Ops:
    return ops_context(ops_settings(tmp_path, db_url), db, tmp_path)


class Crash(Exception):
    """The process dies part-way through a batch."""


def crash_after_first_file(monkeypatch: pytest.MonkeyPatch) -> None:
    real = BatchStore.add_file
    calls = {"n": 0}

    def add_file(self: BatchStore, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(BatchStore, "add_file", add_file)


def sent(ops: Ops) -> int:
    return len(MessageStore(ops.ctx.database).list(direction="out", kind="business"))


def test_a_batch_left_bezig_becomes_onderbroken_and_nothing_is_queued_twice(
    ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_zip([("a.xml", wmo301(ident="C-1")), ("b.xml", wmo301(ident="C-2"))])
    path = ops.file("crash.zip", data)
    with monkeypatch.context() as patch:
        crash_after_first_file(patch)
        with pytest.raises(Crash):
            aanleveren.aanleveren(ops.ctx, Upload("crash.zip", path))
    [left] = aanleveren.list_batches(ops.ctx, aanleveren.BatchQuery())
    # The crash came after b.xml was queued and before its verslag line was written.
    assert left.status == "Bezig" and sent(ops) == 2
    # Received but never processed (the API's background step never ran).
    waiting = aanleveren.ontvang(ops.ctx, Upload("wacht.zip", ops.file("wacht.zip", data)))
    assert waiting.status == "Ontvangen"

    # Not yet idle for long: another process may still be at work on them.
    ops.clock.advance(IDLE - timedelta(seconds=1))
    assert aanleveren.onderbroken(ops.ctx, IDLE) == ()
    ops.clock.advance(timedelta(seconds=2))
    marked = aanleveren.onderbroken(ops.ctx, IDLE)
    assert {(v.batch, v.status) for v in marked} == {
        (left.batch, "Onderbroken"),
        (waiting.batch, "Onderbroken"),
    }
    crashed = aanleveren.verslag(ops.ctx, left.batch)
    assert crashed.aantal_aangeleverd == 2 and crashed.aantal_correct == 1 and crashed.aantal_incorrect == 0
    assert crashed.einde_verwerking == ops.clock.now() and [f.bestand for f in crashed.bestanden] == ["a.xml"]
    assert aanleveren.onderbroken(ops.ctx, IDLE) == ()  # once only
    events = list_audit(ops.ctx, AuditQuery(action="aanlevering-onderbroken")).events
    assert sorted(e.subject for e in events) == sorted([f"batch {left.batch}", f"batch {waiting.batch}"])
    assert all(e.actor == "medewerker" for e in events)
    assert sent(ops) == 2  # marking queues nothing

    # The same ZIP again finishes the verslag: both files are recognised as sent, none goes twice.
    again = aanleveren.aanleveren(ops.ctx, Upload("crash.zip", ops.file("crash2.zip", data)))
    assert again.status == "Afgeleverd"
    assert [(f.bestand, f.uitkomst) for f in again.bestanden] == [
        ("a.xml", "al verzonden"),
        ("b.xml", "al verzonden"),
    ]
    assert sent(ops) == 2
    listed = aanleveren.list_batches(ops.ctx, aanleveren.BatchQuery(status="Onderbroken"))
    assert {v.batch for v in listed} == {left.batch, waiting.batch}


def test_revision_0015_downgrade_keeps_interrupted_batches_as_afgekeurd(ops: Ops) -> None:
    from alembic import command

    aanleveren.ontvang(ops.ctx, Upload("x.zip", ops.file("x.zip", make_zip([("a.xml", wmo301())]))))
    ops.clock.advance(IDLE * 2)
    assert len(aanleveren.onderbroken(ops.ctx, IDLE)) == 1
    database = ops.ctx.database
    with database.connection() as conn:
        command.downgrade(database._alembic_config(conn), "0010")
    with database.session() as session:
        assert session.execute(sa.select(aanlever_batch.c.status)).scalars().all() == ["Afgekeurd"]
        with pytest.raises(sa.exc.IntegrityError), session.begin_nested():
            session.execute(sa.update(aanlever_batch).values(status="Onderbroken"))
    database.upgrade()
    with database.session() as session:
        session.execute(sa.update(aanlever_batch).values(status="Onderbroken"))
        with pytest.raises(sa.exc.IntegrityError), session.begin_nested():
            session.execute(sa.update(aanlever_batch).values(status="Kwijt"))


def test_the_serve_task_marks_a_left_batch_at_start(ops: Ops) -> None:
    import asyncio

    from ggk_ebms.pipeline.aanlever_recovery import aanlever_recovery_task
    from ggk_ebms.runtime import Runtime

    waiting = aanleveren.ontvang(ops.ctx, Upload("x.zip", ops.file("x.zip", make_zip([("a.xml", wmo301())]))))
    ops.clock.advance(IDLE * 2)
    runtime = Runtime.build(ops.ctx.settings, ops.ctx.database, clock=ops.clock, ids=ops.ctx.ids)
    task = aanlever_recovery_task(ops.ctx.settings.replace(aanlever_idle_seconds=int(IDLE.total_seconds())))

    async def run() -> str:
        running = asyncio.create_task(task(runtime))
        try:
            for _ in range(600):  # a generous deadline; the first pass runs at once
                status = aanleveren.verslag(ops.ctx, waiting.batch).status
                if status != "Ontvangen":
                    return status
                await asyncio.sleep(0.05)
            return "Ontvangen"
        finally:
            running.cancel()

    assert asyncio.run(run()) == "Onderbroken"
    [event] = list_audit(ops.ctx, AuditQuery(action="aanlevering-onderbroken")).events
    assert event.actor == "serve"
