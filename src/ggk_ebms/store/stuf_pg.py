"""The stuurgegevens of a delivery batch in ONE PostgreSQL statement.

``delivery_batch.record_stuf`` stores a stuf_message row per message of the batch, replacing the
row of a message delivered again (``upsert_record``). Generically that is a SELECT of the rows
that exist, a multi-row INSERT through SQLAlchemy's executemany, and an upsert per existing row.
Here it is ``INSERT ... VALUES ... ON CONFLICT (message_pk) DO UPDATE``: the unique message_pk
(store/tables.py) decides between the two, in the caller's transaction, with the statement written
once per batch size with native placeholders (store/pg_statement.py). The update sets what
``upsert_record`` sets: every stuurgegeven and updated_at, never created_at nor the Fo01 columns.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms.store.pg_statement import Placeholders, Statement, execute_raw, quoted, values_list
from ggk_ebms.store.stuf import StufRecord
from ggk_ebms.store.tables import stuf_message

_RECORD_COLUMNS: Final = tuple(StufRecord.__dataclass_fields__)
_COLUMNS: Final = (*_RECORD_COLUMNS, "created_at", "updated_at")
_record_values: Final = operator.attrgetter(*_RECORD_COLUMNS)
_REPLACED: Final = tuple(c for c in (*_RECORD_COLUMNS, "updated_at") if c != "message_pk")


@functools.lru_cache(maxsize=128)
def _statement(count: int, dialect: sa.Dialect) -> Statement:
    # Every identifier is a column of the table metadata; every value is a bound parameter.
    params = Placeholders()
    rows = [[params.add(f"r{i}_{c}", stuf_message.c[c].type) for c in _COLUMNS] for i in range(count)]
    replaced = ", ".join(f"{quoted(c)} = EXCLUDED.{quoted(c)}" for c in _REPLACED)
    return params.statement(
        f"INSERT INTO {quoted(stuf_message.name)} ({', '.join(map(quoted, _COLUMNS))}) "
        f"{values_list(rows)} ON CONFLICT (message_pk) DO UPDATE SET {replaced}",
        dialect,
    )


def upsert_records(session: Session, records: Sequence[StufRecord], *, now: datetime) -> None:
    """Store or replace the stuurgegevens of ``records``, which name distinct messages (one row
    may not be changed twice by one statement: PostgreSQL refuses it)."""
    if len({record.message_pk for record in records}) != len(records):
        raise ValueError("upsert_records needs distinct messages")
    if not records:
        return
    connection = session.connection()
    # The values in the statement's ``$n`` order (every row's _COLUMNS in turn), so no
    # parameter name is made or looked up (Statement.bind_in_order).
    values: list[Any] = []
    for record in records:
        values.extend(_record_values(record))
        values.append(now)  # created_at
        values.append(now)  # updated_at
    execute_raw(connection, _statement(len(records), connection.dialect), values)
