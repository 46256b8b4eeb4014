"""The send queue across processes: ``ggk-ebms worker`` killed with SIGKILL mid-queue and
restarted, and two workers draining one PostgreSQL queue.

The partner (the RINIS counterpart, in this process) acknowledges synchronously, so the sender
needs no endpoint of its own; it answers each message a little late (test_faults delay-ms) so the
kill lands while sends are in flight. "Exactly once at the partner" is checked on the partner's
database (one stored message per MessageId) and on ours (every message Delivered); "no double
sends" on the attempt log (one attempt per message).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore
from tests.outbound_support import (
    WorkerProcess,
    eventually,
    free_port,
    make_cpa,
    received_ids,
    side_settings,
    started,
    submit,
)
from tests.process import write_settings

pytestmark = pytest.mark.slow

TOTAL = 30


def _prepare(tmp_path: Path, db_url: str, delay_ms: int):  # type: ignore[no-untyped-def]
    g_port, r_port = free_port(), free_port()
    # A long RetryInterval: queued messages must not reach TimeToLive while they wait.
    cpa_id, cpa = make_cpa(
        g_port, r_port, sync_reply=True, version="proc-t", retry_interval=timedelta(minutes=10)
    )
    # Short timeouts: the lease after which a killed worker's job is taken over follows them.
    # Ten in flight per worker, a third of the queue: two workers both get their share of it,
    # and a kill lands with sends in flight and messages still queued.
    gemeente = side_settings(
        "gemeente",
        tmp_path,
        db_url,
        cpa,
        g_port,
        http_timeout=3.0,
        http_connect_timeout=2.0,
        send_max_in_flight=10,
    )
    rinis = side_settings(
        "rinis",
        tmp_path,
        f"sqlite:///{tmp_path / 'rinis.db'}",
        cpa,
        r_port,
        test_faults=[f"delay-ms:{delay_ms}"],
    )
    return cpa_id, gemeente, rinis


def _queue(gemeente, cpa_id: str) -> tuple[Database, list[int]]:  # type: ignore[no-untyped-def]
    from ggk_ebms.server.autoimport import import_cpa_dir

    database = Database(gemeente.database_url)
    database.upgrade()
    assert all("not imported" not in line for line in import_cpa_dir(gemeente, database))
    pks = [submit(gemeente, database, cpa_id, f"<n>{n}</n>".encode()).pk for n in range(TOTAL)]
    return database, pks


def _all_delivered(database: Database, pks: list[int]) -> bool:
    store = MessageStore(database)
    return all(store.get(pk).status == "Delivered" for pk in pks)


async def test_kill_9_mid_queue_then_restart_delivers_each_once(tmp_path: Path, db_url: str) -> None:
    cpa_id, gemeente, rinis = _prepare(tmp_path, db_url, delay_ms=150)
    database, pks = _queue(gemeente, cpa_id)
    config = write_settings(gemeente, tmp_path / "gemeente.toml")
    worker = WorkerProcess(config, tmp_path / "worker.log")
    try:
        async with started(rinis, worker=False) as partner:
            worker.start()
            await eventually(lambda: len(received_ids(partner.database)) >= 5, what="first sends")
            worker.kill()
            delivered_before = sum(MessageStore(database).get(pk).status == "Delivered" for pk in pks)
            assert delivered_before < TOTAL, "the kill came after the queue was drained"
            worker.start()  # restart on the same database; the dead worker's claims expire
            await eventually(lambda: _all_delivered(database, pks), timeout=90, what="all Delivered")
            ids = received_ids(partner.database)
    finally:
        worker.stop()
    ours = {MessageStore(database).get(pk).message_id for pk in pks}
    assert len(ids) == len(set(ids)) == TOTAL and set(ids) == ours
    database.dispose()


@pytest.mark.postgres
async def test_two_workers_on_postgres_never_send_a_message_twice(tmp_path: Path, pg_schema_url: str) -> None:
    cpa_id, gemeente, rinis = _prepare(tmp_path, pg_schema_url, delay_ms=400)
    database, pks = _queue(gemeente, cpa_id)
    config = write_settings(gemeente, tmp_path / "gemeente.toml")
    workers = [WorkerProcess(config, tmp_path / f"worker-{n}.log") for n in (1, 2)]
    try:
        async with started(rinis, worker=False) as partner:
            for worker in workers:
                worker.start()
            await eventually(lambda: _all_delivered(database, pks), timeout=90, what="all Delivered")
            ids = received_ids(partner.database)
    finally:
        for worker in workers:
            worker.stop()
    queue = JobQueue(database)
    attempts = [queue.attempts(pk) for pk in pks]
    assert all(len(a) == 1 and a[0].http_status == 200 for a in attempts), "a message was sent twice"
    # A finished job keeps the id of the worker that did it: both processes took part.
    claimed_by = {job.claimed_by for pk in pks for job in queue.jobs_for(pk)}
    assert len(ids) == len(set(ids)) == TOTAL
    assert len(claimed_by) == 2
    database.dispose()
