"""cli/output.py: the JSON form of values and the table that never wraps or cuts."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ggk_ebms.cli.output import Column, dumps, render_table, to_jsonable


class Colour(enum.Enum):
    RED = "red"


def test_json_values() -> None:
    moment = datetime(2026, 12, 5, 12, 0, 1, tzinfo=UTC)
    document = {"when": moment, "wait": timedelta(minutes=2), "path": Path("/a/b"), "colour": Colour.RED,
                "items": (1, "x", None, True)}  # fmt: skip
    assert json.loads(dumps(document)) == {
        "when": "2026-12-05T12:00:01+00:00",
        "wait": 120.0,
        "path": "/a/b",
        "colour": "red",
        "items": [1, "x", None, True],
    }


def test_json_refuses_bytes_and_unknown_types() -> None:
    with pytest.raises(TypeError, match="personal data"):
        to_jsonable({"payload": b"<Bsn/>"})
    with pytest.raises(TypeError):
        to_jsonable(object())


def test_table_rows_are_one_line_each_and_values_whole() -> None:
    long_id = "a" * 120 + "@gemeente.example"
    rows = [
        {"id": 7, "message_id": long_id, "status": "Delivered"},
        {"id": 12, "message_id": "short@x", "status": None},
        {"id": 3, "message_id": "two\nlines", "status": "Failed"},
    ]
    columns = [
        Column("id", "id", align_right=True),
        Column("message_id", "MessageId"),
        Column("status", "status"),
    ]
    lines = render_table(rows, columns)
    assert len(lines) == 2 + len(rows)
    assert long_id in lines[2]
    assert lines[3].startswith("12  short@x")
    assert lines[2].startswith(" 7  " + long_id)
    assert "two\\nlines" in lines[4]
    assert all(line == line.rstrip() for line in lines)
    # Columns line up: every value of a column starts at the same offset.
    offset = lines[0].index("status")
    assert lines[2][offset:].startswith("Delivered")
    assert lines[4][offset:].startswith("Failed")
