"""``ggk-ebms send``: queue a business message for a partner, and optionally wait for the outcome.

The files become the payload parts (Content-Type guessed from the extension, Content-IDs
generated); the message is built from the CPA by ``pipeline.outbound.submit_message``. Without
``--wait`` the worker of ``serve`` (or a ``ggk-ebms worker``) sends it. With ``--wait`` a worker
runs in this process until the message is final: note that an asynchronous Acknowledgment
arrives at our endpoint, so for an async reliable channel ``serve`` must run on the same database.
"""

from __future__ import annotations

import asyncio
import mimetypes
import time
from pathlib import Path
from typing import Final

import click

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.lifecycle import Status
from ggk_ebms.pipeline.outbound import is_final, submit_message
from ggk_ebms.pipeline.worker import SendWorker
from ggk_ebms.runtime import Runtime, message_id_host
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore, NewPart, StoredMessage

# The iStandaarden payloads are XML; mimetypes' answer for .xml differs per platform.
_CONTENT_TYPES: Final = {".xml": "application/xml", ".txt": "text/plain", ".pdf": "application/pdf"}
_FALLBACK_TYPE: Final = "application/octet-stream"
_POLL_SECONDS: Final = 0.2


def content_type_of(path: Path) -> str:
    """The Content-Type for a payload file, from its extension."""
    known = _CONTENT_TYPES.get(path.suffix.lower())
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or _FALLBACK_TYPE


async def wait_for_outcome(runtime: Runtime, message: StoredMessage, timeout: float) -> StoredMessage:
    """Run a worker here until ``message`` is final or ``timeout`` seconds have passed."""
    settings, database = runtime.settings, runtime.database
    store = MessageStore(database, runtime.clock)
    worker = SendWorker(settings, database, clock=runtime.clock, agreements=runtime.agreements)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = time.monotonic() + timeout
    try:
        while True:
            current = await asyncio.to_thread(store.get, message.pk)
            if is_final(current) or time.monotonic() >= deadline or task.done():
                return current
            await asyncio.sleep(_POLL_SECONDS)
    finally:
        stop.set()
        await task


def print_attempts(database: Database, message: StoredMessage) -> None:
    for number, attempt in enumerate(JobQueue(database).attempts(message.pk), start=1):
        status = attempt.http_status if attempt.http_status is not None else "-"
        error = f"  {attempt.error}" if attempt.error else ""
        click.echo(
            f"  attempt {number}: {attempt.started_at:%H:%M:%S} HTTP {status} {attempt.outcome}{error}"
        )


@click.command("send")
@click.option("--cpa", "cpa_id", required=True, help="CPAId of the agreement to send under.")
@click.option("--service", required=True, help="eb:Service, e.g. ggk:berichtenverkeer:1.0.")
@click.option("--action", required=True, help="eb:Action, e.g. envelopHeenbericht-ggk_Di01.")
@click.option("--role", default=None, help="Our role, only when the CPA lets us send the action in several.")
@click.option("--conversation", "conversation_id", default=None, help="ConversationId (default: a new one).")
@click.option("--wait", is_flag=True, help="Send it from this process and wait until it is final.")
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True, help="Seconds --wait waits."
)
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def send(
    ctx: click.Context,
    cpa_id: str,
    service: str,
    action: str,
    role: str | None,
    conversation_id: str | None,
    wait: bool,
    timeout: float,
    files: tuple[Path, ...],
) -> None:
    """Queue a message with FILE... as payload parts; prints its MessageId.

    With --wait, exit status 0 only when the message is Delivered.
    """
    settings = settings_of(ctx)
    database = open_database(settings)
    runtime = Runtime.build(settings, database)
    ids = runtime.ids
    try:
        parts = [
            NewPart(f"{ids.uuid()}@{message_id_host(settings)}", content_type_of(p), p.read_bytes())
            for p in files
        ]
    except OSError as exc:
        database.dispose()
        fail(f"cannot read {exc.filename}: {exc.strerror}")
    try:
        from ggk_ebms.delivery.submit import check_raw_part  # StUF rules also on the raw path

        for part in parts:
            check_raw_part(settings, database, part.data)
        message = submit_message(
            settings,
            database,
            cpa_id=cpa_id,
            service=service,
            action=action,
            parts=parts,
            conversation_id=conversation_id,
            role=role,
            ids=ids,
            clock=runtime.clock,
        )
        click.echo(message.message_id)
        if not wait:
            return
        final = asyncio.run(wait_for_outcome(runtime, message, timeout))
        print_attempts(database, final)
    except (GgkEbmsError, ValueError) as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if not is_final(final):
        click.echo(f"still {final.status} after {timeout:g} s; the worker of `serve` carries on")
        raise SystemExit(2)
    code = f" ({final.error_code})" if final.error_code else ""
    click.echo(f"{final.status}{code}: {final.status_reason or ''}".rstrip(": "))
    if final.status != Status.DELIVERED:
        raise SystemExit(1)
