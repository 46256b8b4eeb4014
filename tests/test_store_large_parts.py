"""Large parts go into the database in slices and come back byte for byte, on SQLite and
PostgreSQL (store/large_parts.py): bound whole, a 25 MB part was copied twice more on its way in."""

from __future__ import annotations

import hashlib
import mmap
import tempfile
from datetime import UTC, datetime

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
