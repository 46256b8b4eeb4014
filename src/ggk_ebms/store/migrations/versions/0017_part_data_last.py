"""message_part: ``data`` becomes the last column on SQLite, so a large part is never built in memory.

A part over 4 MiB is inserted with ``zeroblob(size)`` and then filled with incremental blob I/O
(store/large_parts.py). SQLite keeps a zeroblob out of the row record only when no column after it
holds data; with ``sha256`` and ``size`` after ``data`` (as 0001 created the table) it expands the
zeroblob to the full size and then copies it into the record: two buffers of the part's size, the
peak of a 25 MB receive (2.1x the message, docs/performance.md "Memory"). With ``data`` last the
zeroblob stays a count of zero bytes and the insert holds no more than SQLite's page cache.

SQLite cannot move a column, so the table is rebuilt: a new table in the new order, the rows
copied with their keys (``pk`` is the rowid, which the blob I/O addresses), the old table dropped,
the new one renamed. No other table refers to message_part, so nothing else changes. On a large
database this copies every stored part once, inside the migration's transaction.

PostgreSQL keeps its order: it stores a large bytea out of line (TOAST) whatever its position,
and the large parts go in by COPY, which names its columns; rebuilding would only cost time.

Written by hand to match ggk_ebms/store/tables.py at this revision (the metadata/migration test
compares them). Values are spelled out: a migration records the schema as it was.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ID = 1024  # tables.MESSAGE_ID_MAX at this revision
_REBUILT = "_message_part_rebuilt"

_COLUMNS: dict[str, Callable[[], sa.Column[object]]] = {
    "pk": lambda: sa.Column("pk", sa.Integer, primary_key=True),  # SQLite's BigPk variant: the rowid
    "message_pk": lambda: sa.Column("message_pk", sa.BigInteger, nullable=False),
    "seq": lambda: sa.Column("seq", sa.Integer, nullable=False),
    "content_id": lambda: sa.Column("content_id", sa.String(ID), nullable=False),
    "content_type": lambda: sa.Column("content_type", sa.String(1024), nullable=False),
    "data": lambda: sa.Column("data", sa.LargeBinary, nullable=False),
    "sha256": lambda: sa.Column("sha256", sa.String(64), nullable=False),
    "size": lambda: sa.Column("size", sa.BigInteger, nullable=False),
}
OLD_ORDER = ("pk", "message_pk", "seq", "content_id", "content_type", "data", "sha256", "size")
NEW_ORDER = ("pk", "message_pk", "seq", "content_id", "content_type", "sha256", "size", "data")


def _rebuild(order: tuple[str, ...]) -> None:
    """Rebuild message_part on SQLite with its columns in ``order``; rows, keys and constraints kept."""
    op.create_table(
        _REBUILT,
        *(_COLUMNS[name]() for name in order),
        sa.PrimaryKeyConstraint("pk", name="pk_message_part"),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["message.pk"], name="fk_message_part_message_pk_message", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("message_pk", "seq", name="uq_message_part_message_pk_seq"),
    )
    names = ", ".join(order)  # the fixed column names above, no input
    op.execute(f"INSERT INTO {_REBUILT} ({names}) SELECT {names} FROM message_part")  # noqa: S608
    op.drop_table("message_part")
    op.rename_table(_REBUILT, "message_part")


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rebuild(NEW_ORDER)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rebuild(OLD_ORDER)
