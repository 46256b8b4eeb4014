"""What the portal-work commands share: the service context and JSON/CSV output.

``emit_json`` is the one place these commands write JSON, so it can be switched to the shared
CLI output helper at merge. The actor in the audit trail is ``$GGK_EBMS_ACTOR`` or the OS user.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.server.run import message_id_host
from ggk_ebms.services.context import ServiceContext
from ggk_ebms.services.jsonable import plain
from ggk_ebms.store.db import Database


def actor() -> str:
    try:
        return os.environ.get("GGK_EBMS_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "onbekend"


def service_context(settings: Settings, database: Database) -> ServiceContext:
    return ServiceContext(
        database=database,
        settings=settings,
        actor=actor(),
        clock=SystemClock(),
        ids=UuidIdGenerator(host=message_id_host(settings)),
    )


def emit_json(value: Any) -> None:
    click.echo(json.dumps(plain(value), ensure_ascii=False, indent=2))


def emit_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else (v.isoformat() if isinstance(v, datetime) else v) for v in row])
    click.echo(buffer.getvalue(), nl=False)


def when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"
