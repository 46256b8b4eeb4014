"""Reading and writing MIME parts larger than a few MiB without whole extra copies.

A StUF envelope may be 25 MB (the GGk limit, docs/delivery.md "Message size"). Fetched whole,
PostgreSQL sends a bytea as hex text, twice its size, which the driver then decodes: 75 MB of
buffers for a 25 MB part. So a part above ``PART_SLICE`` is read in slices: on PostgreSQL with
``substr``, 1 MiB at a time; on SQLite with incremental blob I/O, ``PART_SLICE`` at a time (SQLite's
``substr`` loads the whole value for each slice). The slices go into one buffer, or into a
temporary file for a reader that parses slice by slice (``read_part_spooled``).

Written as one bound parameter, a part is copied whole again on its way into the database: SQLite
copies the bound value and then builds the row record around it (two copies), libpq copies it into
its output buffer (which grows by doubling, to 32 MiB for 25 MB). So a part above ``PART_SLICE``
goes in slices as well (docs/performance.md "Memory"):

- SQLite: the row is inserted with a ``zeroblob`` of the part's size and the data is written into
  it with incremental blob I/O. SQLite leaves a zeroblob out of the row record only when it is the
  record's last value, which is why ``data`` is the table's last column (migration 0017); before,
  the insert alone held two buffers of the part's size (docs/performance.md "Memory");
- PostgreSQL: ``COPY ... FROM STDIN`` in text format, the bytea in hex written slice by slice, so
  the client never holds more than one slice; the server assembles the value.

Both run inside the caller's transaction: the part is stored with its message or not at all.
Tried before and measured (bench memory, 2026-12-05): appending slices on PostgreSQL
(``data = data || :slice``) made the insert three times slower; COPY does not rewrite the value.
"""

from __future__ import annotations

import binascii
import io
from collections.abc import Iterator, Mapping
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms.spool import SpooledRange, spool
from ggk_ebms.store.tables import message_part

PART_SLICE: Final = 4 * 1024 * 1024
_COPY_SLICE: Final = 1024 * 1024  # hex doubles it: 2 MiB on the wire per write
_PG_READ_SLICE: Final = 1024 * 1024
# The columns besides ``data`` a part row is written with, in COPY order (``data`` comes last).
_COLUMNS: Final = ("message_pk", "seq", "content_id", "content_type", "sha256", "size")


def is_large(size: int) -> bool:
    """Whether a part of ``size`` bytes is written and read in slices."""
    return size > PART_SLICE


def _read_slices(session: Session, part_pk: int, size: int) -> Iterator[bytes]:
    """The data of a stored part, ``PART_SLICE`` bytes at a time.

    SQLite reads it with incremental blob I/O: ``substr`` on a blob first loads the whole value,
    so each 4 MiB slice cost a 25 MB buffer inside SQLite (bench memory, 2026-12-05).
    """
    if session.get_bind().dialect.name == "sqlite":
        raw: Any = session.connection().connection.driver_connection  # sqlite3.Connection
        with raw.blobopen(message_part.name, "data", part_pk, readonly=True) as blob:
            for _ in range(0, size, PART_SLICE):
                yield blob.read(PART_SLICE)
        return
    # PostgreSQL answers in text format: a slice arrives as hex (twice its size) in libpq's
    # result before psycopg decodes it. Smaller slices keep those buffers small; 4 MiB ones
    # took the send worker to 2× for a 25 MB part (bench memory, 2026-12-05).
    for offset in range(0, size, _PG_READ_SLICE):
        yield bytes(
            session.execute(
                sa.select(sa.func.substr(message_part.c.data, offset + 1, _PG_READ_SLICE)).where(
                    message_part.c.pk == part_pk
                )
            ).scalar_one()
        )


def read_part_data(session: Session, part_pk: int, size: int) -> bytes:
    """The data of a stored part, fetched ``PART_SLICE`` bytes at a time into one buffer."""
    out = io.BytesIO()  # grows in place (realloc), and getvalue() hands over its buffer
    for piece in _read_slices(session, part_pk, size):
        out.write(piece)
    return out.getvalue()


def read_part_spooled(session: Session, part_pk: int, size: int) -> SpooledRange:
    """The data of a stored part in a temporary file (ggk_ebms/spool.py), read in slices: for
    the readers that parse a large part slice by slice and never need it whole in memory."""
    return spool(_read_slices(session, part_pk, size))


def _slices(data: bytes | SpooledRange, size: int) -> Iterator[memoryview]:
    """``data`` in views of ``size`` bytes; a spooled range drops each slice's pages after use."""
    if isinstance(data, SpooledRange):
        yield from data.slices(size)
        return
    whole = memoryview(data)
    for offset in range(0, len(whole), size):
        yield whole[offset : offset + size]


def insert_large_part(session: Session, values: Mapping[str, Any], data: bytes | SpooledRange) -> None:
    """Insert one part row (``values``: the columns of ``_COLUMNS``) with ``data`` written in slices."""
    size = len(data) if isinstance(data, bytes) else data.size
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        _insert_sqlite(session, values, data, size)
    elif dialect == "postgresql":
        _copy_postgresql(session, values, data)
    else:  # pragma: no cover - the store runs on SQLite and PostgreSQL only
        whole = data if isinstance(data, bytes) else data.view().tobytes()
        session.execute(sa.insert(message_part).values(**values, data=whole))


def _insert_sqlite(
    session: Session, values: Mapping[str, Any], data: bytes | SpooledRange, size: int
) -> None:
    row = {name: values[name] for name in _COLUMNS}
    # ``data`` is the row's last value (tables.message_part), so SQLite writes the zeroblob as a
    # count of zero bytes straight into the pages, without a buffer of ``size`` bytes.
    pk = session.execute(
        sa.insert(message_part).values(**row, data=sa.func.zeroblob(size)).returning(message_part.c.pk)
    ).scalar_one()
    # The same sqlite3 connection, inside the same transaction as the INSERT above.
    raw: Any = session.connection().connection.driver_connection  # sqlite3.Connection
    with raw.blobopen(message_part.name, "data", pk) as blob:  # the pk is the rowid (tables.BigPk)
        for piece in _slices(data, PART_SLICE):
            blob.write(piece)


def _copy_text(value: object) -> bytes:
    """One field in COPY text format: backslash, tab, newline and CR escaped (PostgreSQL COPY)."""
    text = str(value)
    for plain, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        text = text.replace(plain, escaped)
    return text.encode("utf-8")


def _copy_postgresql(session: Session, values: Mapping[str, Any], data: bytes | SpooledRange) -> None:
    columns = ", ".join(f'"{name}"' for name in (*_COLUMNS, "data"))
    # Identifiers from the table metadata only; every value goes through the COPY data stream.
    statement = f'COPY "{message_part.name}" ({columns}) FROM STDIN'
    raw: Any = session.connection().connection.driver_connection  # psycopg.Connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        # A bytea in hex form is \x followed by hex digits; the backslash itself is escaped in COPY text.
        copy.write(b"\t".join(_copy_text(values[name]) for name in _COLUMNS) + b"\t\\\\x")
        for piece in _slices(data, _COPY_SLICE):
            copy.write(binascii.hexlify(piece))
        copy.write(b"\n")
