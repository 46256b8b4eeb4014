"""What the portal-work commands share: the service context and JSON/CSV output.

``emit_json`` is the one place these commands write JSON; it hands over to the CLI's output
helper (cli/output.py), so every ``--json`` document is serialised the same way (docs/cli.md).
The actor in the audit trail is ``$GGK_EBMS_ACTOR`` or the OS user.
"""

from __future__ import annotations

import csv
import getpass
import io
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

import click

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.services.context import ServiceContext
from ggk_ebms.store.db import Database


def actor() -> str:
    return os.environ.get("GGK_EBMS_ACTOR") or os_user(fallback="onbekend")


def os_user(*, fallback: str) -> str:
    """The login name of whoever runs the command; ``fallback`` where the OS has none (containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return fallback


class _SettingsIds:
    """``UuidIdGenerator`` on the configured MessageId host, resolved when the first id is made.

    The host rule lives in server/run.py, which brings aiohttp and the inbound pipeline with it; a
    read-only command (``messages list``) makes no id and so never imports it (docs/performance.md,
    "CLI start-up").
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ids: UuidIdGenerator | None = None

    def _generator(self) -> UuidIdGenerator:
        if self._ids is None:
            from ggk_ebms.server.run import message_id_host

            self._ids = UuidIdGenerator(host=message_id_host(self._settings))
        return self._ids

    def message_id(self) -> str:
        return self._generator().message_id()

    def uuid(self) -> str:
        return self._generator().uuid()


def service_context(settings: Settings, database: Database) -> ServiceContext:
    return ServiceContext(
        database=database,
        settings=settings,
        actor=actor(),
        clock=SystemClock(),
        ids=_SettingsIds(settings),
    )


T = TypeVar("T")


class _HasDatabase(Protocol):
    @property
    def database(self) -> Database: ...


C = TypeVar("C", bound=_HasDatabase)


def call_service(ctx: click.Context, action: Callable[[ServiceContext], T]) -> T:
    """Run one service call on a database opened for this command (see ``run_and_close``)."""
    settings = settings_of(ctx)
    return run_and_close(service_context(settings, open_database(settings)), action)


def run_and_close(
    context: C,
    action: Callable[[C], T],
    refusals: tuple[type[Exception], ...] = (GgkEbmsError,),
) -> T:
    """Run ``action`` on ``context``, then close the context's database whatever happened.

    A refusal (``GgkEbmsError`` unless told otherwise) ends the command with its message and exit
    code 1 (docs/cli.md), the same for every command that calls a service.
    """
    try:
        return action(context)
    except refusals as exc:
        fail(str(exc))
    finally:
        context.database.dispose()


def emit_json(value: Any) -> None:
    """One JSON document on stdout, written by the CLI's one output helper (cli/output.py)."""
    from ggk_ebms.cli.output import dumps

    click.echo(dumps(value))


def emit_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else (v.isoformat() if isinstance(v, datetime) else v) for v in row])
    click.echo(buffer.getvalue(), nl=False)


def when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"
