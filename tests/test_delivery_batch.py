"""The delivery worker's batches on SQLite and PostgreSQL (docs/delivery.md "Batches").

Deterministic proofs, counted in the SQL the database receives rather than timed: a batch of N
jobs is claimed in ONE statement and its attempts are written in ONE statement; each outcome
reaches its own message (its own file, byte for byte, its own attempt and job); a step or a
forwarder that fails for one message leaves the others delivered; two copies of one StUF message
in the same batch are told apart as one-by-one handling would; a batch fsyncs its folder once,
before recording any of it, and a failed fsync makes its forwards retries; and a wake-up from the
receive path starts the worker without waiting for its poll.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery import wakeup
from ggk_ebms.delivery.forwarders.base import Delivery, Forwarded
from ggk_ebms.delivery.forwarders.directory import DirectoryForwarder, FolderSyncs
from ggk_ebms.delivery.worker import DeliveryWorker, delivery_task
from ggk_ebms.errors import StoreError, TransportError
from ggk_ebms.lifecycle import Event, IllegalTransition, Step
from ggk_ebms.runtime import Runtime
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store import delivery_batch
from ggk_ebms.store import lifecycle as steps
from ggk_ebms.store.db import Database
from ggk_ebms.store.delivery_batch import claim_deliveries
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.store.stuf import StufRecord
from ggk_ebms.store.stuf_pg import upsert_records
from ggk_ebms.store.tables import job, message, stuf_message
from tests.endpoint import RINIS, cpa_folder, party_settings
from tests.test_delivery_worker import envelope, payload, receive
from tests.test_directory_folder_sync import Disk

ROUTES = """
[endpoint]
gemeentecodes = ["0363"]

[[sender]]
id = "{rinis}"
gemeentecodes = ["0363"]

[[route]]
name = "folder"
gemeentecode = "0363"
berichttype = "WMO305"
target = {{ type = "directory", path = "{base}/inbox" }}
"""
BATCH = 5


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return party_settings(
        "gemeente",
        tmp_path,
        db_url,
        cpa_folder(tmp_path),
        delivery_retry_seconds=0.0,
        delivery_retry_max_seconds=0.0,
        delivery_max_attempts=3,
        delivery_batch=BATCH,
        delivery_parallel=3,
    )


@pytest.fixture
def db(settings: Settings, tmp_path: Path) -> Iterator[Database]:
    database = Database(settings.database_url)
    database.upgrade()
    for line in import_cpa_dir(settings, database):
        assert "not imported" not in line or "sync" in line, line
    RouteStore(database).replace(
        ROUTES.format(rinis=RINIS, base=tmp_path), source="routes.toml", base_dir=tmp_path
    )
    try:
        yield database
    finally:
        database.dispose()


def worker(settings: Settings, db: Database) -> DeliveryWorker:
    return DeliveryWorker(settings, db, clock=SystemClock(), ids=UuidIdGenerator())


def received(db: Database, count: int) -> dict[int, bytes]:
    """``count`` distinct WMO305 Di01s queued for delivery: message pk -> the payload it carries."""
    out: dict[int, bytes] = {}
    for n in range(count):
        body = payload(ident=f"B-{n}-{uuid.uuid4().hex[:6]}")
        out[receive(db, envelope(body=body))] = body
    return out


class Statements:
    """Every SQL statement the engine sends (each executemany counts once), upper-cased."""

    def __init__(self, db: Database) -> None:
        self.seen: list[str] = []
        self._engine = db.engine
        sa.event.listen(self._engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(" ".join(statement.split()).upper())

    def count(self, *fragments: str) -> int:
        return sum(1 for s in self.seen if all(f in s for f in fragments))

    def close(self) -> None:
        sa.event.remove(self._engine, "before_cursor_execute", self._record)


def delivered_file(tmp_path: Path, body: bytes) -> Path:
    [match] = [p for p in (tmp_path / "inbox").iterdir() if p.read_bytes() == body]
    return match


def test_a_batch_is_claimed_in_one_statement_and_each_outcome_reaches_its_own_message(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    bodies = received(db, BATCH - 1)
    statements = Statements(db)
    try:
        handled = worker(settings, db).run_once()
    finally:
        statements.close()
    assert handled == BATCH - 1
    # The claim is the only UPDATE that counts an attempt: one for the whole batch.
    assert statements.count("UPDATE JOB", "ATTEMPTS=(JOB.ATTEMPTS +") == 1
    # The attempts of the batch: one statement (on PostgreSQL the outcome's one statement,
    # store/finish_pg.py); the stuurgegevens: one INSERT (on PostgreSQL an upsert, store/stuf_pg.py).
    assert statements.count("INSERT INTO ATTEMPT") + statements.count('INSERT INTO "ATTEMPT"') == 1
    assert statements.count("INSERT INTO STUF_MESSAGE") + statements.count('INSERT INTO "STUF_MESSAGE"') == 1
    store, jobs = MessageStore(db), JobQueue(db)
    files = set()
    for pk, body in bodies.items():
        message = store.get(pk)
        assert message.status == "Forwarded", message.status_reason
        assert message.business_status == "delivered"
        [job] = jobs.jobs_for(pk)
        assert (job.status, job.attempts) == ("done", 1)
        [attempt] = jobs.attempts(pk)
        assert (attempt.outcome, attempt.job_pk) == ("ok", job.pk)
        # Its own file, byte for byte, named in its own status reason.
        path = delivered_file(tmp_path, body)
        assert str(path) in (message.status_reason or "")
        files.add(path)
    assert len(files) == len(bodies)


def test_a_batch_of_four_costs_the_statements_of_a_batch_of_one(settings: Settings, db: Database) -> None:
    """No statement per message is left: claim, load, history, stuurgegevens, outcomes."""
    seen = []
    for count in (1, BATCH - 1):
        received(db, count)
        statements = Statements(db)
        try:
            assert worker(settings, db).run_once() == count
        finally:
            statements.close()
        seen.append(statements.seen)
    one, four = seen
    assert len(four) == len(one), "\n".join(four)


def test_a_step_that_fails_for_one_message_leaves_the_others_delivered(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = received(db, 4)
    victim = sorted(bodies)[1]
    real, real_batch, real_decide = steps.transition, steps.transition_batch, steps.decide_batch

    def failing(session: Any, message_pk: int, event: Event, **kw: Any) -> Step:
        if message_pk == victim and event is Event.FORWARDED:
            raise StoreError("the guarded update of this one message failed")
        return real(session, message_pk, event, **kw)

    def failing_batch(session: Any, changes: Any, **kw: Any) -> list[Step]:
        if any(c.message_pk == victim and c.event is Event.FORWARDED for c in changes):
            raise StoreError("the guarded update of this one message failed")
        return real_batch(session, changes, **kw)

    def failing_decision(session: Any, changes: Any, **kw: Any) -> Any:  # PostgreSQL: finish_pg
        if any(c.message_pk == victim and c.event is Event.FORWARDED for c in changes):
            raise StoreError("the guarded update of this one message failed")
        return real_decide(session, changes, **kw)

    monkeypatch.setattr(steps, "transition", failing)
    monkeypatch.setattr(steps, "transition_batch", failing_batch)
    monkeypatch.setattr(steps, "decide_batch", failing_decision)
    worker(settings, db).run_once()
    store, jobs = MessageStore(db), JobQueue(db)
    for pk in bodies:
        message = store.get(pk)
        [job] = jobs.jobs_for(pk)
        if pk == victim:
            # Not Forwarded; its job is back in the queue with the reason, not lost.
            assert message.status == "Received"
            assert job.status == "pending"
            assert "guarded update" in (job.last_error or "")
        else:
            assert message.status == "Forwarded", message.status_reason
            assert job.status == "done"
            assert [a.outcome for a in jobs.attempts(pk)] == ["ok"]
    monkeypatch.setattr(steps, "transition", real)
    monkeypatch.setattr(steps, "transition_batch", real_batch)
    monkeypatch.setattr(steps, "decide_batch", real_decide)
    worker(settings, db).run_once()
    assert store.get(victim).status == "Forwarded"


def test_a_forwarder_that_fails_for_one_message_leaves_the_others_delivered(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = received(db, 4)
    victim = sorted(bodies)[2]
    real = DirectoryForwarder.forward

    def forward(self: DirectoryForwarder, delivery: Delivery) -> Forwarded:
        if delivery.message_pk == victim:
            raise TransportError("folder not writable for this one", retryable=True)
        return real(self, delivery)

    monkeypatch.setattr(DirectoryForwarder, "forward", forward)
    worker(settings, db).run_once()
    store, jobs = MessageStore(db), JobQueue(db)
    for pk in bodies:
        attempts = [a.outcome for a in jobs.attempts(pk)]
        if pk == victim:
            assert store.get(pk).status == "Received"
            assert attempts == ["retry"]
            [job] = jobs.jobs_for(pk)
            assert job.status == "pending"
        else:
            assert store.get(pk).status == "Forwarded"
            assert attempts == ["ok"]


def _without_metadata(db: Database, tmp_path: Path) -> Path:
    """The route's folder without a metadata file: the forwards then leave every folder fsync
    to the batch (with one, each also fsyncs once before its metadata file)."""
    text = ROUTES.replace('path = "{base}/inbox" }}', 'path = "{base}/inbox", write_metadata = false }}')
    assert text != ROUTES
    RouteStore(db).replace(text.format(rinis=RINIS, base=tmp_path), source="routes.toml", base_dir=tmp_path)
    return tmp_path / "inbox"


def test_a_batch_fsyncs_its_folder_once_before_recording_any_of_it(
    settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _without_metadata(db, tmp_path)
    disk = Disk(monkeypatch)
    bodies = received(db, BATCH + 1)  # two batches
    forwarded_at_sync: list[int] = []
    real_sync = FolderSyncs.sync

    def sync(self: FolderSyncs) -> dict[Path, TransportError]:
        forwarded_at_sync.append(sum(MessageStore(db).get(pk).status == "Forwarded" for pk in bodies))
        return real_sync(self)

    monkeypatch.setattr(FolderSyncs, "sync", sync)
    assert worker(settings, db).run_once() == BATCH + 1
    # Nothing of a batch is recorded as delivered before its folder is synced: at the second
    # batch's sync only the first batch is.
    assert forwarded_at_sync == [0, BATCH]
    assert {MessageStore(db).get(pk).status for pk in bodies} == {"Forwarded"}
    assert disk.events.count(("folder", str(folder))) == 2  # one per batch, not one per message
    assert disk.events[-1] == ("folder", str(folder))
    for body in bodies.values():
        delivered_file(tmp_path, body)


def test_a_batch_whose_folder_fsync_fails_is_retried_not_recorded(
    settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _without_metadata(db, tmp_path)
    folder.mkdir()
    disk = Disk(monkeypatch)
    disk.failing.add(folder)
    bodies = received(db, 3)
    worker(settings, db).run_once()  # the renames happened, but the folder's fsync failed
    store, jobs = MessageStore(db), JobQueue(db)
    for pk in bodies:
        assert store.get(pk).status == "Received"
        assert [a.outcome for a in jobs.attempts(pk)] == ["retry"]
    disk.failing.clear()  # the disk recovers; the retry writes the same files again
    worker(settings, db).run_once()
    assert {store.get(pk).status for pk in bodies} == {"Forwarded"}
    assert [[a.outcome for a in jobs.attempts(pk)] for pk in bodies] == [["retry", "ok"]] * 3
    assert len(list(folder.iterdir())) == 3


TWO_FOLDERS = """
[endpoint]
gemeentecodes = ["0363", "0014"]

[[sender]]
id = "{rinis}"
gemeentecodes = ["0363", "0014"]

[[route]]
name = "amsterdam"
gemeentecode = "0363"
berichttype = "WMO305"
target = {{ type = "directory", path = "{base}/a", write_metadata = false }}

[[route]]
name = "other"
gemeentecode = "0014"
berichttype = "WMO305"
target = {{ type = "directory", path = "{base}/b", write_metadata = false }}
"""


def test_only_the_forwards_into_the_folder_whose_fsync_failed_are_retried(
    settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    RouteStore(db).replace(
        TWO_FOLDERS.format(rinis=RINIS, base=tmp_path), source="routes.toml", base_dir=tmp_path
    )
    good, bad = tmp_path / "a", tmp_path / "b"
    bad.mkdir()
    Disk(monkeypatch).failing.add(bad)
    into = {
        receive(db, envelope(gemeente=gemeente, body=payload(gemeente=gemeente, ident=f"B-{n}"))): gemeente
        for n, gemeente in enumerate(["0363", "0014", "0363", "0014"])
    }
    worker(settings, db).run_once()  # one batch, two folders, one fsync fails
    store, jobs = MessageStore(db), JobQueue(db)
    for pk, gemeente in into.items():
        outcomes = [a.outcome for a in jobs.attempts(pk)]
        if gemeente == "0014":
            assert (store.get(pk).status, outcomes) == ("Received", ["retry"])
        else:
            assert (store.get(pk).status, outcomes) == ("Forwarded", ["ok"])
    assert len(list(good.iterdir())) == 2


def test_a_copy_in_the_same_batch_is_a_duplicate_as_one_by_one(settings: Settings, db: Database) -> None:
    # The same StUF message (zender, referentienummer, payload) in two ebMS messages: the later
    # one is not delivered again (docs/stuf-routing.md check 8), though both are in one batch.
    data = envelope()
    first, second = receive(db, data), receive(db, data)
    worker(settings, db).run_once()
    store = MessageStore(db)
    assert store.get(first).status == "Forwarded"
    assert store.get(second).status == "Processed"
    assert f"as message {first}: delivered once already" in (store.get(second).status_reason or "")
    # Handed to the folder once: the copy has no delivery attempt of its own.
    jobs = JobQueue(db)
    assert [a.outcome for a in jobs.attempts(first)] == ["ok"]
    assert jobs.attempts(second) == []


def test_more_jobs_than_a_batch_are_all_delivered_in_batches(settings: Settings, db: Database) -> None:
    bodies = received(db, 2 * BATCH + 1)
    statements = Statements(db)
    try:
        assert worker(settings, db).run_once() == len(bodies)
    finally:
        statements.close()
    assert statements.count("UPDATE JOB", "ATTEMPTS=(JOB.ATTEMPTS +") == 3
    assert {MessageStore(db).get(pk).status for pk in bodies} == {"Forwarded"}


def test_a_wake_up_from_the_receive_path_starts_the_worker_before_its_poll(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A poll of ten minutes: once the first (empty) round is over, a delivery within the
    # deadline below can only come from the wake-up.
    slow = dataclasses.replace(settings, worker_poll_seconds=600.0)
    rounds: list[int] = []
    first_round_done = threading.Event()
    real = DeliveryWorker.run_once

    def counted(self: DeliveryWorker) -> int:
        handled = real(self)
        rounds.append(handled)
        first_round_done.set()
        return handled

    monkeypatch.setattr(DeliveryWorker, "run_once", counted)

    async def scenario() -> str:
        task = asyncio.create_task(delivery_task(slow)(Runtime.build(slow, db)))
        try:
            deadline = time.monotonic() + 60
            assert await asyncio.to_thread(first_round_done.wait, 60)
            assert rounds == [0]
            pk = await asyncio.to_thread(receive, db, envelope())
            wakeup.notify()
            status = "Received"
            while status == "Received":
                assert time.monotonic() < deadline, "not delivered: the wake-up did not reach the worker"
                await asyncio.sleep(0.05)
                status = (await asyncio.to_thread(MessageStore(db).get, pk)).status
            return status
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    assert asyncio.run(scenario()) == "Forwarded"


def test_wakeup_listeners_are_called_and_removed() -> None:
    calls: list[str] = []
    remove = wakeup.add_listener(lambda: calls.append("woken"))
    wakeup.notify()
    remove()
    wakeup.notify()
    assert calls == ["woken"]


def test_jobs_not_yet_due_stay_out_of_the_batch(settings: Settings, db: Database) -> None:
    bodies = received(db, 3)
    later = sorted(bodies)[0]
    [job] = JobQueue(db).jobs_for(later)
    JobQueue(db).retry(job.pk, due_at=datetime.now(UTC) + timedelta(hours=1), error="later")
    assert worker(settings, db).run_once() == 2
    assert MessageStore(db).get(later).status == "Received"


def test_the_claim_takes_each_job_once(settings: Settings, db: Database) -> None:
    pks = sorted(received(db, 4))
    now, lease = datetime.now(UTC), timedelta(minutes=5)
    first = claim_deliveries(db, now=now, worker_id="a", limit=3, lease=lease)
    second = claim_deliveries(db, now=now, worker_id="b", limit=3, lease=lease)
    assert [j.message_pk for j in first] == pks[:3]
    assert [j.message_pk for j in second] == pks[3:]
    assert {(j.status, j.attempts, j.claimed_by) for j in first} == {("running", 1, "a")}
    # A claim older than the lease is the job of a dead worker: taken over, attempts counted.
    later = claim_deliveries(db, now=now + 2 * lease, worker_id="c", limit=10, lease=lease)
    assert sorted(j.message_pk for j in later) == pks
    assert {(j.attempts, j.claimed_by) for j in later} == {(2, "c")}


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_the_claim_passes_over_rows_another_node_has_locked(settings: Settings, db: Database) -> None:
    # Another node's claim in progress holds row locks on two jobs: this claim skips them
    # (SKIP LOCKED) instead of waiting or taking them too.
    pks = sorted(received(db, 4))
    with db.engine.connect() as other:
        locked = other.execute(
            sa.select(job.c.pk).where(job.c.message_pk.in_(pks[:2])).with_for_update()
        ).all()
        assert len(locked) == 2
        claimed = claim_deliveries(
            db, now=datetime.now(UTC), worker_id="me", limit=10, lease=timedelta(minutes=5)
        )
        other.rollback()
    assert sorted(j.message_pk for j in claimed) == pks[2:]


def test_transition_batch_decides_again_for_a_message_moved_under_it(db: Database) -> None:
    # Another transaction moves one message between the batch's read and its guarded UPDATE
    # (here: just before that UPDATE, on the same connection). The guard misses for it alone;
    # it is read again and decided anew, which for Forwarded -> FORWARDED is IllegalTransition,
    # exactly what the one-message ``transition`` raises.
    victim, other = sorted(received(db, 2))

    moved: list[int] = []

    def move(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not moved and statement.lstrip().upper().startswith("UPDATE MESSAGE SET STATUS"):
            moved.append(victim)
            conn.execute(sa.update(message).where(message.c.pk == victim).values(status="Forwarded"))

    changes = [steps.BusinessChange(pk, Event.FORWARDED, f"to {pk}") for pk in (victim, other)]
    sa.event.listen(db.engine, "before_cursor_execute", move)
    try:
        with pytest.raises(IllegalTransition), db.session() as session:
            steps.transition_batch(session, changes, now=datetime.now(UTC), layer="ebms")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", move)
    assert moved == [victim]
    # The whole transaction was rolled back: nothing half-applied.
    assert {MessageStore(db).get(pk).status for pk in (victim, other)} == {"Received"}
    with db.session() as session:
        taken = steps.transition_batch(session, changes, now=datetime.now(UTC), layer="ebms")
    assert [step.target for step in taken] == ["Forwarded", "Forwarded"]
    for pk in (victim, other):
        stored = MessageStore(db).get(pk)
        assert (stored.status, stored.status_reason) == ("Forwarded", f"to {pk}")
        with db.session() as session:
            assert [e.event for e in steps.history(session, pk)][-1] == Event.FORWARDED.value


def test_transition_batch_applies_two_steps_of_one_message_in_order(db: Database) -> None:
    [pk] = received(db, 1)
    changes = [
        steps.BusinessChange(pk, Event.STUF_RECEIVED),
        steps.BusinessChange(pk, Event.STUF_DELIVERED, "delivered to a folder"),
    ]
    with db.session() as session:
        taken = steps.transition_batch(session, changes, now=datetime.now(UTC), layer="business")
    assert [step.target for step in taken] == ["received", "delivered"]
    assert MessageStore(db).get(pk).business_status == "delivered"


def test_stuurgegevens_of_a_batch_are_stored_and_replaced_as_one_by_one(db: Database) -> None:
    """``record_stuf``'s rows: a new message gets its row, a message delivered again has its row
    replaced in place (same pk and created_at, new values and updated_at, its Fo01 columns kept),
    as ``upsert_record`` does; on PostgreSQL in ONE upsert (store/stuf_pg.py), on SQLite by the
    INSERT and the per-message upsert. Run on both, so both are held to the same rows."""
    first, second, third = (receive(db, envelope()) for _ in range(3))
    t1 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    t2 = t1 + timedelta(minutes=5)

    def record(pk: int, berichttype: str, *, unknown: bool = False) -> StufRecord:
        return StufRecord(
            message_pk=pk,
            direction="in",
            berichtcode="Di01",
            referentienummer=f"ref-{pk}",
            zender="zender",
            ontvanger="0363",
            gemeentecode="0363",
            berichttype=berichttype,
            cross_refnummer=None if not unknown else f"x-{pk}",
            tijdstip_bericht="20261206100000000",
            bericht_identificatie=f"B-{pk}",
            payload_sha256="a" * 64,
            cross_ref_unknown=unknown,
        )

    def write(records: list[StufRecord], now: datetime) -> None:
        with db.session() as session:
            if db.backend == "postgresql":
                upsert_records(session, records, now=now)
            else:
                delivery_batch._insert_or_replace(session, records, now)

    def rows() -> dict[int, dict[str, Any]]:
        with db.session() as session:
            return {r.message_pk: dict(r._mapping) for r in session.execute(sa.select(stuf_message))}

    write([record(first, "WMO301"), record(second, "WMO301")], t1)
    with db.session() as session:
        session.execute(
            sa.update(stuf_message).where(stuf_message.c.message_pk == first).values(fout_code="StUF058")
        )
    before = rows()
    write([record(first, "WMO305", unknown=True), record(third, "WMO307")], t2)
    after = rows()

    assert set(after) == {first, second, third}
    assert after[second] == before[second]
    replaced = after[first]
    assert (replaced["pk"], replaced["created_at"], replaced["fout_code"]) == (
        before[first]["pk"],
        t1,
        "StUF058",
    )
    assert (replaced["berichttype"], replaced["cross_ref_unknown"], replaced["cross_refnummer"]) == (
        "WMO305",
        True,
        f"x-{first}",
    )
    assert replaced["updated_at"] == t2
    assert (after[third]["berichttype"], after[third]["created_at"], after[third]["updated_at"]) == (
        "WMO307",
        t2,
        t2,
    )


@pytest.mark.postgres
def test_the_one_upsert_refuses_a_message_named_twice(pg_schema_url: str) -> None:
    """PostgreSQL refuses to change one row twice in one statement; ``record_stuf`` sends such a
    batch the generic way, and ``upsert_records`` says so plainly instead of failing in SQL."""
    database = Database(pg_schema_url)
    database.upgrade()
    try:
        twice = StufRecord(
            message_pk=1, direction="in", berichtcode="Di01", referentienummer="r", zender="z", ontvanger="o"
        )
        with database.session() as session, pytest.raises(ValueError, match="distinct"):
            upsert_records(session, [twice, twice], now=datetime.now(UTC))
    finally:
        database.dispose()
