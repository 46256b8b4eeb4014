"""The koppeltabel catch-up in batches: the same keys and relations as reading one message at a
time, in a constant number of round trips per batch, and safe beside another reader (a second
server process or node). On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ggk_ebms.clock import FixedClock
from ggk_ebms.errors import StoreError
from ggk_ebms.koppeltabel import Relation
from ggk_ebms.koppeltabel_batch import Member, relate_batch
from ggk_ebms.services import koppeltabel as service
from ggk_ebms.store import koppeltabel as koppel_store
from ggk_ebms.store.db import Database
from ggk_ebms.store.koppeltabel import KoppelStore
from ggk_ebms.store.tables import koppel_key, koppel_message, koppel_relation
from tests.ketendata_support import AGB_A, AGB_B, CLIENTS, jw301, jw305, jw307, jw323
from tests.koppeltabel_support import Traffic, jw315, jw325, retour

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
# jw323 declares on these two ToewijzingNummers; the others are only in 301/305/307/315.
NUMMERS = ("300200", "300201", "300202", "300203")

Snapshot = tuple[frozenset[tuple[Any, ...]], frozenset[tuple[Any, ...]], frozenset[tuple[Any, ...]]]


@dataclass
class Stored:
    """Pks of the generated traffic by kind, with the payload identification of each heen."""

    by_kind: dict[str, list[tuple[int, str]]]

    def pick(self, rng: random.Random, kind: str) -> tuple[int, str] | None:
        found = self.by_kind.get(kind, [])
        return rng.choice(found) if found else None

    def other(self, rng: random.Random) -> int:
        """Any stored StUF message: a crossRefnummer that names the wrong one."""
        return rng.choice([pk for kind, held in self.by_kind.items() if kind != "csv" for pk, _ in held])


def _generate(traffic: Traffic, seed: int, count: int) -> int:
    """``count`` messages of 301/302/305/307/315/316/323/325/Fo01 traffic (and a CSV file) in a
    seeded random order: answers may come before what they answer (out-of-order arrival), parties
    may differ (no relation then). Returns how many were stored."""
    rng = random.Random(seed)
    stored = Stored({})
    c = traffic.clock
    for n in range(count):
        kind = rng.choice(("301", "301", "302", "305", "307", "315", "316", "323", "325", "Fo01", "csv"))
        client = CLIENTS[n % 2]
        nummer = rng.choice(NUMMERS)
        ident = f"X-{n}"
        pk: int | None = None
        if kind == "301":
            nummers = sorted(rng.sample(NUMMERS, rng.randint(1, 2)))
            agb = rng.choice((AGB_A, AGB_A, AGB_B))
            pk = traffic.di01(jw301(ident, client, nummers, agb=agb), "JW301", "out", agb=agb)
        elif kind == "302":
            heen = stored.pick(rng, "301")
            if heen is not None:
                # Mostly the crossRefnummer; sometimes it names another message and only the
                # BerichtIdentificatie in the retour header links the two.
                answers = heen[0] if rng.random() < 0.7 else stored.other(rng)
                pk = traffic.du01(retour("JW302", heen[1]), "JW302", "in", answers=answers)
        elif kind == "305":
            pk = traffic.di01(jw305(ident, client, nummer), "JW305", "in")
        elif kind == "307":
            pk = traffic.di01(jw307(ident, client, nummer), "JW307", "in")
        elif kind == "315":
            pk = traffic.di01(jw315(ident, [f"AB-{nummer}"]), "JW315", "in")
        elif kind == "316":
            heen = stored.pick(rng, "315")
            if heen is not None:
                pk = traffic.du01(retour("JW316", heen[1]), "JW316", "out", answers=heen[0])
        elif kind == "323":
            pk = traffic.di01(jw323(ident), "JW323", "in")
        elif kind == "325":
            heen = stored.pick(rng, "323")
            if heen is not None:
                # crossRefnummer, or only the DeclaratieIdentificatie when it names another message.
                answers = heen[0] if rng.random() < 0.5 else stored.other(rng)
                pk = traffic.du01(jw325(ident, heen[1]), "JW325", "out", answers=answers)
        elif kind == "Fo01":
            heen = stored.pick(rng, rng.choice(("301", "305", "307", "323")))
            if heen is not None:
                pk = traffic.fo01(rng.choice(("in", "out")), answers=heen[0])
        else:
            pk = traffic._store(b"gemeentecode;aantal\n0363;4\n", f"csv-{n}", "in")
        if pk is not None:
            stored.by_kind.setdefault(kind, []).append((pk, ident))
        c.advance(timedelta(minutes=rng.randint(0, 90)))
    return sum(len(v) for v in stored.by_kind.values())


def _snapshot(db: Database) -> Snapshot:
    with db.session() as session:
        messages = frozenset(tuple(r) for r in session.execute(sa.select(koppel_message)).all())
        keys = frozenset(
            tuple(r)
            for r in session.execute(
                sa.select(koppel_key.c.message_pk, koppel_key.c.name, koppel_key.c.value)
            ).all()
        )
        relations = frozenset(
            tuple(r)
            for r in session.execute(
                sa.select(
                    koppel_relation.c.earlier_pk,
                    koppel_relation.c.later_pk,
                    koppel_relation.c.relation,
                    koppel_relation.c.via,
                    koppel_relation.c.value,
                    koppel_relation.c.created_at,
                )
            ).all()
        )
    return messages, keys, relations


def _wipe(db: Database) -> None:
    with db.session() as session:
        for table in (koppel_relation, koppel_key, koppel_message):
            session.execute(sa.delete(table))


def _one_at_a_time(db: Database, clock: FixedClock) -> int:
    """The reference: every message through ``index_message``, one transaction each, pk order."""
    store = KoppelStore(db)
    items = store.unindexed(10**6)
    for item in items:
        service.index_message(db, clock, item.pk, store.first_part(item))
    return len(items)


def _in_batches(db: Database, clock: FixedClock, size: int) -> int:
    store = KoppelStore(db)
    done = 0
    while batch := store.unindexed(size):
        service.index_batch(db, clock, batch)
        done += len(batch)
    return done


@pytest.mark.parametrize("seed", [17, 2026])
def test_batches_of_any_size_give_what_one_at_a_time_gives(db: Database, seed: int) -> None:
    clock = FixedClock(START)
    stored = _generate(Traffic(db, clock), seed, 70)
    assert _one_at_a_time(db, clock) == stored
    reference = _snapshot(db)
    assert len(reference[2]) > 20  # the traffic is related enough to mean something
    for size in (1, 2, 5, 13, 200):
        _wipe(db)
        assert _in_batches(db, clock, size) == stored
        assert _snapshot(db) == reference, f"batch size {size}"
    # Half already read one at a time (an older version, another process), the rest in batches.
    _wipe(db)
    store = KoppelStore(db)
    for item in store.unindexed(10**6)[1::2]:
        service.index_message(db, clock, item.pk, store.first_part(item))
    assert service.catch_up(db, clock) == stored - stored // 2
    assert _snapshot(db)[1:] == reference[1:]


def test_a_heenbericht_and_its_retour_in_one_batch_are_related_once_earlier_first(db: Database) -> None:
    clock = FixedClock(START)
    t = Traffic(db, clock)
    # The retour is stored first (out of order), then its 301, then a start on it: one batch.
    start = t.di01(jw305("S-1", CLIENTS[0], "300200"), "JW305", "in")
    toewijzing = t.di01(jw301("T-1", CLIENTS[0], ["300200"]), "JW301", "out")
    retour_pk = t.du01(retour("JW302", "T-1"), "JW302", "in", answers=toewijzing)
    assert service.catch_up(db, clock) == 3
    with db.session() as session:
        rows = set(
            session.execute(
                sa.select(
                    koppel_relation.c.earlier_pk, koppel_relation.c.later_pk, koppel_relation.c.relation
                )
            ).all()
        )
    assert rows == {
        (toewijzing, start, Relation.START.value),
        (toewijzing, retour_pk, Relation.RETOUR.value),
    }


def test_relate_batch_replays_the_order_of_one_at_a_time() -> None:
    """The pure core on its own: a member finds the members before it, not the ones after it,
    and ``max_candidates`` keeps the lowest pks, as KoppelStore.candidates does."""
    from ggk_ebms.koppeltabel import Keys

    def keys(ref: str, cross: str | None, berichttype: str, code: str) -> Keys:
        return Keys(code, ref, cross, "A", "B", berichttype=berichttype)

    heen = Member(5, keys("R5", None, "JW301", "Di01"))
    answer = Member(6, Keys("Du01", "R6", "R5", "B", "A", berichttype="JW302"))
    links = relate_batch([answer, heen], {}, {}, width=255, max_candidates=1000)
    assert [(x.earlier, x.later, x.relation) for x in links] == [(5, 6, Relation.RETOUR)]
    assert relate_batch([answer, heen], {}, {}, width=255, max_candidates=0) == []
    assert relate_batch([Member(7, None), heen], {}, {}, width=255, max_candidates=1000) == []


# --- round trips ------------------------------------------------------------------------------------
@contextmanager
def _counting(db: Database) -> Iterator[dict[str, int]]:
    counts = {"statements": 0, "transactions": 0}

    def statement(*_: object) -> None:
        counts["statements"] += 1

    def transaction(*_: object) -> None:
        counts["transactions"] += 1

    sa.event.listen(db.engine, "before_cursor_execute", statement)
    sa.event.listen(db.engine, "begin", transaction)
    try:
        yield counts
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", statement)
        sa.event.remove(db.engine, "begin", transaction)


def _round_trips(t: Traffic, tag: str, toewijzingen: int) -> dict[str, int]:
    for n in range(toewijzingen):
        nummer = f"{tag}{n:05d}"
        heen = t.di01(jw301(f"T-{tag}{n}", CLIENTS[n % 2], [nummer]), "JW301", "out")
        t.du01(retour("JW302", f"T-{tag}{n}"), "JW302", "in", answers=heen)
        t.di01(jw305(f"S-{tag}{n}", CLIENTS[n % 2], nummer), "JW305", "in")
    batch = KoppelStore(t.db).unindexed(200)
    assert len(batch) == 3 * toewijzingen
    with _counting(t.db) as counts:
        service.index_batch(t.db, t.clock, batch)
    return counts


def test_a_batch_costs_the_same_round_trips_whatever_its_size(db: Database) -> None:
    t = Traffic(db, FixedClock(START))
    small = _round_trips(t, "8", 4)
    large = _round_trips(t, "9", 40)  # 120 messages
    assert small == large
    # Already read, holders with their keys, the three inserts: one transaction.
    assert large["transactions"] == 1
    with db.session() as session:
        relations = session.execute(sa.select(sa.func.count()).select_from(koppel_relation)).scalar_one()
    assert relations == 2 * 44


def test_a_hot_identifier_falls_back_to_one_at_a_time_with_the_same_outcome(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FixedClock(START)
    stored = _generate(Traffic(db, clock), 5, 40)
    _one_at_a_time(db, clock)
    reference = _snapshot(db)
    _wipe(db)
    monkeypatch.setattr(koppel_store, "MAX_HOLDER_ROWS", 3)  # every batch past the first is "hot"
    assert _in_batches(db, clock, 10) == stored
    assert _snapshot(db) == reference


# --- another reader at the same moment -------------------------------------------------------------
@pytest.mark.parametrize("seen", [True, False], ids=["seen-in-the-transaction", "unique-conflict"])
def test_a_batch_that_meets_another_reader_stores_everything_once(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, seen: bool
) -> None:
    clock = FixedClock(START)
    stored = _generate(Traffic(db, clock), 99, 50)
    _one_at_a_time(db, clock)
    reference = _snapshot(db)
    _wipe(db)
    store = KoppelStore(db)
    batch = store.unindexed(200)
    # Another reader stores three of them after this batch was listed, before it is saved.
    for item in batch[3:5] + batch[20:21]:
        service.index_message(db, clock, item.pk, store.first_part(item))
    if not seen:
        # As if that reader committed after the batch's check (a reader without the catch-up
        # lock, such as an older version on another node): the inserts meet the unique keys,
        # nothing of the batch is stored, and it is read one message at a time.
        monkeypatch.setattr(KoppelStore, "_indexed_among", staticmethod(lambda session, pks: set()))
    with caplog.at_level(logging.INFO, logger=service.__name__):
        service.index_batch(db, clock, batch)
    assert ("read one by one" in caplog.text) is not seen
    assert len(batch) == stored
    assert _snapshot(db) == reference


def test_two_catch_ups_over_one_backlog_leave_every_message_read_once(db_url: str) -> None:
    clock = FixedClock(START)
    first, second = Database(db_url), Database(db_url)
    try:
        first.upgrade()
        stored = _generate(Traffic(first, clock), 7, 60)
        _one_at_a_time(first, clock)
        reference = _snapshot(first)
        _wipe(first)
        start = threading.Barrier(2)
        read: list[int] = []
        failures: list[BaseException] = []

        def reader(database: Database) -> None:
            start.wait()
            try:
                while batch := KoppelStore(database).unindexed(7):
                    service.index_batch(database, clock, batch)
                    read.append(len(batch))
            except BaseException as exc:  # handed to the test thread
                failures.append(exc)

        threads = [threading.Thread(target=reader, args=(d,)) for d in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert sum(read) >= stored
        assert _snapshot(first) == reference
    finally:
        first.dispose()
        second.dispose()


def test_a_value_the_database_refuses_stops_the_batch_where_one_at_a_time_would(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refuses a value too long for its column; one at a time, the messages before it
    were read and the catch-up stopped there. A batch falls back to that (SQLite keeps any length)."""
    clock = FixedClock(START)
    t = Traffic(db, clock)
    pks = [t.di01(jw305(f"S-{n}", CLIENTS[0], f"70000{n}"), "JW305", "in") for n in range(4)]
    bad = pks[2]
    real = service.read_keys

    def read_keys(envelope: Any) -> Any:
        keys = real(envelope)
        if keys is not None and keys.identificatie == "S-2":
            return dataclasses.replace(keys, berichttype="X" * 40)  # koppel_message.berichttype is 32
        return keys

    monkeypatch.setattr(service, "read_keys", read_keys)
    batch = KoppelStore(db).unindexed(200)
    store = KoppelStore(db)
    if db.backend == "postgresql":
        with pytest.raises(StoreError):
            service.index_batch(db, clock, batch)
        assert [store.is_indexed(pk) for pk in pks] == [True, True, False, False]
    else:
        service.index_batch(db, clock, batch)
        assert all(store.is_indexed(pk) for pk in pks) and store.is_indexed(bad)
