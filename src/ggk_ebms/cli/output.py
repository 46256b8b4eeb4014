"""Output of the list/show/test commands: a JSON document, or a plain-text table.

Every such command takes ``--json`` (``json_option``) and hands its result to ``emit``: with
``--json`` one JSON document goes to stdout (UTF-8, keys in a stable order, times as ISO 8601,
documented per command in docs/cli.md); without it the command's own text rendering runs.

Tables (``render_table``) never wrap a row and never cut a value: each row is one line, and a
column is as wide as its widest value. In a terminal a long row simply runs past the window
edge, which keeps identifiers (MessageIds, CPAIds) whole for copy and paste; piped into grep,
awk or a file each record stays on one line. Only click and the standard library are used, so a
command that prints does not pay for a rendering library at start-up.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EMPTY: Final = ""


def json_option(function: F) -> F:
    """The ``--json`` flag, passed to the command as ``as_json``."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON document (shape: docs/cli.md) instead of text.",
    )(function)


def paging_options(default_limit: int) -> Callable[[F], F]:
    """``--limit``/``--offset`` for a list command that pages through its results."""

    def decorate(command: F) -> F:
        command = click.option("--offset", type=click.IntRange(0), default=0, help="Sla er zoveel over.")(
            command
        )
        return click.option(
            "--limit", type=click.IntRange(1, 10_000), default=default_limit, show_default=True
        )(command)

    return decorate


def csv_option(command: F) -> F:
    """``--csv``: the rows as CSV (semicolon-separated, written by ``ops_support.emit_csv``)."""
    return click.option("--csv", "as_csv", is_flag=True, help="Als CSV (puntkomma-gescheiden).")(command)


def to_jsonable(value: Any) -> Any:
    """Plain JSON values: datetimes as ISO 8601, durations in seconds, paths and enums as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        raise TypeError("bytes are not shown in JSON output (payloads may hold personal data)")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence | set | frozenset):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"{type(value).__name__} has no JSON form")


def dumps(document: Any) -> str:
    """The JSON text of a document: indented, non-ASCII kept, keys in the order given."""
    return json.dumps(to_jsonable(document), indent=2, ensure_ascii=False)


def emit(document: Any, *, as_json: bool, text: Callable[[], None]) -> None:
    """``document`` as JSON on stdout when ``as_json``, else run ``text`` (the human rendering)."""
    if as_json:
        click.echo(dumps(document))
    else:
        text()


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: the row key it shows and its heading."""

    key: str
    header: str
    align_right: bool = False


def cell(value: Any) -> str:
    """A value as table text: empty for None, ISO-like times without microseconds."""
    if value is None:
        return EMPTY
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    # A table row is one line: a value holding a line break is shown with the break escaped.
    return str(value).replace("\r", "\\r").replace("\n", "\\n")


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> list[str]:
    """The lines of a table: a heading, a rule, one line per row; nothing wrapped or cut."""
    texts = [[cell(row.get(c.key)) for c in columns] for row in rows]
    widths = [max([len(c.header), *(len(t[i]) for t in texts)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if c.align_right else v.ljust(w)
            for v, w, c in zip(values, widths, columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return [
        line([c.header for c in columns]),
        line(["-" * w for w in widths]),
        *(line(t) for t in texts),
    ]


def echo_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, empty: str) -> None:
    """Print a table, or the ``empty`` sentence when there are no rows."""
    if not rows:
        click.echo(empty)
        return
    for text in render_table(rows, columns):
        click.echo(text)


def echo_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """``name  value`` lines with the names aligned (a record of a show command)."""
    width = max((len(name) for name, _ in fields), default=0)
    for name, value in fields:
        click.echo(f"{name.ljust(width)}  {cell(value)}".rstrip())
