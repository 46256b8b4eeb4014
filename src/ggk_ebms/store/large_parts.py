"""Writing and reading MIME parts larger than a few MiB without whole extra copies.

A StUF envelope may be 25 MB (the GGk limit, docs/delivery.md "Message size"). Bound as one
parameter, SQLite copies it twice (the binding and the record it builds) and libpq once; read back
whole, PostgreSQL sends a bytea as hex text, twice its size. So a part above ``PART_SLICE`` is
written and read in slices of that size, inside the caller's transaction:

- SQLite: the row is inserted with a zero-filled blob of the right size, which is then filled
  through SQLite's incremental blob I/O (``sqlite3.Connection.blobopen``);
- PostgreSQL: one bound parameter, which libpq copies once into its send buffer. Appending
  slices (``data = data || :slice``) kept that copy out of our process but made PostgreSQL rewrite
  the growing value each time: three times slower for 25 MB, so not done.

Reading uses ``substr`` on the blob, which both databases offer for binary values.
"""

from __future__ import annotations

import io
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms.store.tables import message_part

PART_SLICE: Final = 4 * 1024 * 1024


def insert_part(session: Session, values: dict[str, Any], data: bytes) -> None:
    """Insert one ``message_part`` row (``values`` without ``data``) whose data is ``data``."""
    view = memoryview(data)
    if session.get_bind().dialect.name == "sqlite":
        pk = session.execute(
            sa.insert(message_part)
            .values(**values, data=sa.func.zeroblob(len(data)))
            .returning(message_part.c.pk)
        ).scalar_one()
        raw: Any = session.connection().connection.driver_connection
        with raw.blobopen(message_part.name, "data", pk) as blob:
            for start in range(0, len(view), PART_SLICE):
                blob.write(view[start : start + PART_SLICE])
        return
    session.execute(sa.insert(message_part).values(**values, data=data))


def read_part_data(session: Session, part_pk: int, size: int) -> bytes:
    """The data of a stored part, fetched ``PART_SLICE`` bytes at a time into one buffer."""
    out = io.BytesIO()
    for offset in range(0, size, PART_SLICE):
        piece = session.execute(
            sa.select(sa.func.substr(message_part.c.data, offset + 1, PART_SLICE)).where(
                message_part.c.pk == part_pk
            )
        ).scalar_one()
        out.write(piece)
    return out.getvalue()
