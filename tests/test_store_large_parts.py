"""Large parts go into the database in slices and come back byte for byte, on SQLite and
PostgreSQL (store/large_parts.py): bound whole, a 25 MB part was copied twice more on its way in."""

from __future__ import annotations

import _sqlite3
import ctypes
import hashlib
import mmap
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ggk_ebms.clock import FixedClock
from ggk_ebms.errors import DuplicateMessageError
from ggk_ebms.spool import SpooledRange, whole
from ggk_ebms.store.db import Database
from ggk_ebms.store.koppeltabel import KoppelStore
from ggk_ebms.store.large_parts import PART_SLICE
from ggk_ebms.store.messages import MessageStore, NewPart
from ggk_ebms.store.tables import message_part
from tests.test_store_messages import ack_for, inbound

LARGE = (b"<GGK:bericht>\t\\x0a\r\n" + bytes(range(256)) * 40) * 500  # over PART_SLICE, awkward bytes
SMALL = b"<Bericht>klein</Bericht>"


def spooled(data: bytes) -> SpooledRange:
    with tempfile.TemporaryFile() as handle:
        handle.write(b"head" + data + b"tail")
        handle.flush()
        return SpooledRange(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ), 4, 4 + len(data))


@pytest.fixture
def store(db: Database) -> MessageStore:
    return MessageStore(db, FixedClock(datetime(2026, 12, 5, 12, tzinfo=UTC)))


def _rows(db: Database, pk: int) -> list[tuple[str, str, int]]:
    with db.session() as session:
        rows = session.execute(
            sa.select(message_part.c.content_id, message_part.c.sha256, message_part.c.size)
            .where(message_part.c.message_pk == pk)
            .order_by(message_part.c.seq)
        ).all()
    return [(r.content_id, r.sha256, r.size) for r in rows]


@pytest.mark.parametrize("form", ["bytes", "spooled"])
def test_a_large_received_part_is_stored_byte_for_byte(db: Database, store: MessageStore, form: str) -> None:
    assert len(LARGE) > PART_SLICE
    # A Content-ID with the characters COPY's text format escapes (tab, backslash).
    cid = "large\t\\part@peer"
    large = (
        NewPart(cid, "text/xml", LARGE) if form == "bytes" else NewPart.of(cid, "text/xml", spooled(LARGE))
    )
    parts = [NewPart("small@peer", "application/xml", SMALL), large, NewPart("empty@peer", "text/plain", b"")]
    result = store.receive(
        inbound(), parts, response=ack_for("m1@rinis"), deliver=True, send_response_async=False
    )
    assert [p.data for p in store.parts(result.message_pk)] == [SMALL, LARGE, b""]
    assert _rows(db, result.message_pk) == [
        ("small@peer", hashlib.sha256(SMALL).hexdigest(), len(SMALL)),
        (cid, hashlib.sha256(LARGE).hexdigest(), len(LARGE)),
        ("empty@peer", hashlib.sha256(b"").hexdigest(), 0),
    ]
    contents = store.part_contents(result.message_pk)
    assert [type(c) for c in contents] == [bytes, SpooledRange, bytes]
    assert [whole(c) for c in contents] == [SMALL, LARGE, b""]


def test_a_small_spooled_part_goes_in_whole(store: MessageStore) -> None:
    result = store.receive(
        inbound(),
        [NewPart.of("s@peer", "text/xml", spooled(SMALL))],
        response=None,
        deliver=True,
        send_response_async=False,
    )
    assert [p.data for p in store.parts(result.message_pk)] == [SMALL]


def test_a_large_part_is_stored_with_its_message_or_not_at_all(db: Database, store: MessageStore) -> None:
    store.receive(inbound(), [], response=None, deliver=False, send_response_async=False)
    with pytest.raises(DuplicateMessageError):
        store.receive(
            inbound(),
            [NewPart("l@peer", "text/xml", LARGE)],
            response=None,
            deliver=False,
            send_response_async=False,
        )
    with db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(message_part)).scalar_one() == 0


def test_the_koppeltabel_reads_a_large_first_part_on_its_own(db: Database, store: MessageStore) -> None:
    small = store.receive(
        inbound("small@rinis"),
        [NewPart("s@peer", "text/xml", SMALL)],
        response=None,
        deliver=False,
        send_response_async=False,
    )
    large = store.receive(
        inbound("large@rinis"),
        [NewPart("l@peer", "text/xml", LARGE)],
        response=None,
        deliver=False,
        send_response_async=False,
    )
    koppel = KoppelStore(db)
    items = {item.pk: item for item in koppel.unindexed()}
    assert items[small.message_pk].envelope == SMALL and items[small.message_pk].large_part is None
    assert items[large.message_pk].envelope is None
    first = koppel.first_part(items[large.message_pk])
    assert isinstance(first, SpooledRange) and whole(first) == LARGE


def _sqlite_allocations() -> ctypes.CDLL:
    """The SQLite library the sqlite3 module runs on (looked up through the extension module
    itself, so a statically linked SQLite is found too, never a second copy with its own counters)."""
    library = ctypes.CDLL(_sqlite3.__file__)
    if not hasattr(library, "sqlite3_memory_highwater"):  # pragma: no cover - depends on the build
        pytest.skip("this SQLite does not export its memory counters")
    for name in ("sqlite3_memory_highwater", "sqlite3_memory_used"):
        getattr(library, name).restype = ctypes.c_int64
    library.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
    return library


def test_sqlite_writes_a_large_part_without_building_its_row(tmp_path: Path) -> None:
    # With ``data`` before other columns SQLite expanded the zeroblob and copied it into the row
    # record: two buffers of the part's size (migration 0017). SQLite's own allocation counters are
    # exact and belong to SQLite alone, so the bound below is no timing or RSS guess: with the
    # column last the insert needs the page cache (2 MB by default) and no buffer of the part's size.
    database = Database(f"sqlite:///{tmp_path / 'ggk.db'}")
    try:
        database.upgrade()
        with database.connection() as conn:
            columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(message_part)")]
        assert columns[-1] == "data"
        store = MessageStore(database, FixedClock(datetime(2026, 12, 5, 12, tzinfo=UTC)))
        size = 24 * 1024 * 1024
        data = bytes(range(256)) * (size // 256)
        sqlite = _sqlite_allocations()
        sqlite.sqlite3_memory_highwater(1)  # the peak starts again from what is in use now
        before = sqlite.sqlite3_memory_used()
        result = store.receive(
            inbound(),
            [NewPart.of("l@peer", "text/xml", spooled(data))],
            response=None,
            deliver=False,
            send_response_async=False,
        )
        peak = sqlite.sqlite3_memory_highwater(0) - before
        assert peak < size // 2, f"SQLite held {peak} bytes at once for a part of {size}"
        assert whole(store.part_contents(result.message_pk)[0]) == data
    finally:
        database.dispose()
