"""``Statement.bind_in_order`` (values given in ``$n`` order, as the receive statement builds
them) binds exactly what ``Statement.bind`` (values by name) binds, bind processors included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ggk_ebms.store.pg_statement import DIALECT, Placeholders
from ggk_ebms.store.tables import message


def test_values_in_order_bind_as_values_by_name() -> None:
    params = Placeholders()
    columns = ("message_id", "created_at", "direction", "updated_at")
    for i in range(3):
        for column in columns:
            params.add(f"m{i}_{column}", message.c[column].type)
    statement = params.statement("SELECT 1", DIALECT)
    # UtcDateTime's processor turns the aware datetimes into what the column stores.
    assert sum(p is not None for p in statement.processors) == 6
    rows = [
        {
            "message_id": f"<{i}@x>",
            "created_at": datetime(2026, 12, 6, i, tzinfo=UTC),
            "direction": "in",
            "updated_at": datetime(2026, 12, 7, i, tzinfo=UTC),
        }
        for i in range(3)
    ]
    by_name = {f"m{i}_{c}": row[c] for i, row in enumerate(rows) for c in columns}
    in_order = [row[c] for row in rows for c in columns]
    assert statement.bind_in_order(in_order) == list(statement.bind(by_name))
    with pytest.raises(ValueError, match="11 values for a statement of 12 parameters"):
        statement.bind_in_order(in_order[:-1])
