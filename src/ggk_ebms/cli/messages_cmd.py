"""``ggk-ebms messages``: the message log for the productbeheerder (received and sent, signals too).

Only headers, sizes, digests and statuses are shown; payload bytes are not printed unless asked
for with ``show --part N -o FILE`` (payloads hold personal data, stuf-ggk digest §3.5).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.cli.message_view import business_status, ebms_status, history_rows, lifecycle_fields
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore, StoredMessage


def _store(ctx: click.Context) -> tuple[Database, MessageStore]:
    database = open_database(settings_of(ctx))
    return database, MessageStore(database)


def _when(message: StoredMessage) -> str:
    return message.created_at.strftime("%Y-%m-%d %H:%M:%S")


@click.group("messages")
def messages() -> None:
    """The message log: what was received and sent, with status."""


@messages.command("list")
@click.option("--direction", type=click.Choice(["in", "out"]), default=None, help="Only received or sent.")
@click.option(
    "--status",
    default=None,
    help="Only this status, of either layer: Received, Failed, Delivered, ... (ebMS) or sent, "
    "accepted, refused, answered, delivered, held (StUF business).",
)
@click.option("--kind", default=None, help="Only this kind (business, Ping, Acknowledgment, ...).")
@click.option("--cpa", "cpa_id", default=None, help="Only messages of this CPA.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.pass_context
def list_messages(
    ctx: click.Context,
    direction: str | None,
    status: str | None,
    kind: str | None,
    cpa_id: str | None,
    limit: int,
) -> None:
    """List messages, newest first."""
    database, store = _store(ctx)
    try:
        rows = store.list(direction=direction, status=status, kind=kind, cpa_id=cpa_id, limit=limit)
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    table = Table(show_lines=False)
    for column in ("id", "time (UTC)", "dir", "kind", "action", "MessageId", "CPAId", "status", "business"):
        table.add_column(column, overflow="fold")
    for m in rows:
        table.add_row(
            str(m.pk),
            _when(m),
            m.direction,
            m.kind,
            m.action,
            m.message_id,
            m.cpa_id,
            ebms_status(m),
            business_status(m),
        )
    console = Console()
    if not console.is_terminal:
        # Piped into grep or a file: one message per line instead of folding at 80 columns.
        console = Console(width=250)
    console.print(table)
    if not rows:
        click.echo("no messages")


@messages.command("show")
@click.argument("ident")
@click.option("--part", "part_no", type=int, default=None, help="Write payload part N (1-based) to --output.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.pass_context
def show_message(ctx: click.Context, ident: str, part_no: int | None, output: Path | None) -> None:
    """Show one message by its number or its MessageId: headers, parts, signals, attempts."""
    database, store = _store(ctx)
    try:
        message = (
            store.get(int(ident))
            if ident.isdigit()
            else (store.find("in", ident) or store.find("out", ident))
        )
        if message is None:
            fail(f"no message {ident}")
        parts = store.parts(message.pk)
        related = store.list_related(message.message_id)
        attempts = JobQueue(database).attempts(message.pk)
        history = history_rows(store.history(message.pk))
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if part_no is not None:
        if output is None:
            fail("--part needs --output FILE")
        if not 1 <= part_no <= len(parts):
            fail(f"message {message.pk} has {len(parts)} part(s)")
        output.write_bytes(parts[part_no - 1].data)
        click.echo(f"wrote part {part_no} ({parts[part_no - 1].size} bytes) to {output}")
        return
    fields = [
        ("id", str(message.pk)),
        ("direction", "received" if message.direction == "in" else "sent"),
        ("kind", message.kind),
        *lifecycle_fields(message).items(),
        ("MessageId", message.message_id),
        ("RefToMessageId", message.ref_to_message_id or ""),
        ("CPAId", message.cpa_id),
        ("ConversationId", message.conversation_id),
        (
            "From",
            f"{message.from_party_id} ({message.from_party_type or 'untyped'}) {message.from_role or ''}",
        ),
        ("To", f"{message.to_party_id} ({message.to_party_type or 'untyped'}) {message.to_role or ''}"),
        ("Service", f"{message.service} ({message.service_type or 'untyped'})"),
        ("Action", message.action),
        ("Timestamp", message.timestamp.isoformat() if message.timestamp else ""),
        ("TimeToLive", message.time_to_live.isoformat() if message.time_to_live else ""),
        ("signal in HTTP response", "yes" if message.sync_reply else "no"),
        ("stored", message.created_at.isoformat()),
        ("updated", message.updated_at.isoformat()),
    ]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        click.echo(f"{name.ljust(width)}  {value}")
    click.echo(f"\nparts ({len(parts)}):")
    for i, part in enumerate(parts, 1):
        click.echo(
            f"  {i}. cid:{part.content_id}  {part.content_type}  {part.size} bytes  sha256 {part.sha256}"
        )
    if related:
        click.echo("\nsignals and related messages:")
        for r in related:
            click.echo(f"  {r.pk}  {r.direction}  {r.kind}  {r.message_id}  {r.status}")
    if attempts:
        click.echo("\nattempts:")
        for a in attempts:
            status = f"HTTP {a.http_status}" if a.http_status else ""
            click.echo(f"  {a.started_at.isoformat()}  {a.outcome}  {status}  {a.error or ''}")
    if history:
        click.echo("\nhistory:")
        for h in history:
            code = f" ({h['code']})" if h["code"] else ""
            reason = f" — {h['reason']}" if h["reason"] else ""
            click.echo(f"  {h['at']}  {h['layer']}  {h['from']} -> {h['to']}{code}  [{h['event']}]{reason}")


@messages.command("retry")
@click.argument("ident")
@click.pass_context
def retry_message_command(ctx: click.Context, ident: str) -> None:
    """Queue a Failed message again, by number or MessageId (received: deliver; sent: send)."""
    from ggk_ebms.clock import SystemClock
    from ggk_ebms.delivery.retry import retry_message

    database, store = _store(ctx)
    try:
        message: StoredMessage | None = None
        if ident.isdigit():
            message = store.get(int(ident))
        else:
            message = store.find("in", ident) or store.find("out", ident)
        if message is None:
            fail(f"no message {ident}")
        click.echo(retry_message(database, message.pk, now=SystemClock().now()))
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
