"""``ggk-ebms messages``: the message log for the productbeheerder (received and sent, signals too).

Only headers, sizes, digests and statuses are shown; payload bytes are not printed unless asked
for with ``show --part N -o FILE`` (payloads hold personal data, stuf-ggk digest §3.5).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.cli.message_view import history_rows, lifecycle_fields
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore, StoredMessage


def _store(ctx: click.Context) -> tuple[Database, MessageStore]:
    database = open_database(settings_of(ctx))
    return database, MessageStore(database)


def _when(message: StoredMessage) -> str:
    return message.created_at.strftime("%Y-%m-%d %H:%M:%S")


def _cell(value: object) -> str:
    if value is None:
        return ""
    return f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else str(value)


@click.group("messages")
def messages() -> None:
    """The message log: what was received and sent, with status."""


@messages.command("list")
@click.option("--since", type=click.DateTime(), default=None, help="From (UTC). Default: --until - 7 days.")
@click.option("--until", type=click.DateTime(), default=None, help="Until (UTC). Default: now.")
@click.option("--berichttype", default=None, help="Only this berichttype (e.g. WMO301).")
@click.option("--gemeentecode", default=None, help="Only this gemeentecode.")
@click.option("--direction", type=click.Choice(["in", "out"]), default=None, help="Only received or sent.")
@click.option(
    "--status",
    default=None,
    help="Only this status, of either layer: Received, Failed, Delivered, ... (ebMS), sent, accepted, "
    "refused, answered, delivered, held (StUF business), or Geweigerd (refused before sending).",
)
@click.option("--referentienummer", default=None, help="Only this StUF referentienummer.")
@click.option("--batch", type=int, default=None, help="Only messages of this aanlevering.")
@click.option("--kind", default=None, help="Only this kind (business, Ping, Acknowledgment, ...).")
@click.option("--signals", is_flag=True, help="Show ebMS signals too (default: business messages only).")
@click.option("--cpa", "cpa_id", default=None, help="Only messages of this CPA.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip this many (paging).")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="As CSV (semicolon-separated).")
@click.pass_context
def list_messages(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    berichttype: str | None,
    gemeentecode: str | None,
    direction: str | None,
    status: str | None,
    referentienummer: str | None,
    batch: int | None,
    kind: str | None,
    signals: bool,
    cpa_id: str | None,
    limit: int,
    offset: int,
    as_json: bool,
    as_csv: bool,
) -> None:
    """The berichtenlog, newest first: sent and received, refused submissions too (docs/operations.md)."""
    from ggk_ebms.cli.ops_support import emit_csv, emit_json, service_context
    from ggk_ebms.clock import utc
    from ggk_ebms.services.berichtenlog import LogFilter, berichtenlog

    settings = settings_of(ctx)
    database = open_database(settings)
    try:
        page = berichtenlog(
            service_context(settings, database),
            LogFilter(
                since=utc(since) if since else None,
                until=utc(until) if until else None,
                berichttype=berichttype,
                gemeentecode=gemeentecode,
                direction=direction,
                status=status,
                referentienummer=referentienummer,
                batch=batch,
                include_signals=signals,
                kind=kind,
                cpa_id=cpa_id,
                limit=limit,
                offset=offset,
            ),
        )
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    header = (
        "id", "time (UTC)", "dir", "berichttype", "gemeentecode", "aanbieder", "referentienummer",
        "status", "business", "StUF", "batch", "MessageId", "CPAId", "gelezen", "removed",
    )  # fmt: skip
    rows = [
        (
            r.message_pk if r.message_pk is not None else f"f{r.aanlever_file_pk}",
            r.tijdstip,
            r.direction,
            r.berichttype or ("" if r.kind == "business" else r.kind),
            r.gemeentecode,
            r.aanbieder_naam or (r.ontvanger if r.direction == "out" else r.zender),
            r.referentienummer,
            r.status
            + (f" ({r.error_code})" if r.error_code else "")
            + (f": {r.status_reason}" if r.message_pk is None and r.status_reason else ""),
            (r.business_status or "")
            + (f" ({r.business_code})" if r.business_code else "")
            + (f", message {r.business_ref_pk}" if r.business_ref_pk is not None else ""),
            r.stuf_fout,
            r.batch_pk,
            r.message_id,
            r.cpa_id,
            r.gelezen,
            r.verwijderd,
        )
        for r in page.rows
    ]
    if as_json:
        emit_json(page)
        return
    if as_csv:
        emit_csv(header, rows)
        return
    table = Table(show_lines=False)
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console = Console()
    if not console.is_terminal:
        # Piped into grep or a file: one message per line instead of folding at 80 columns.
        console = Console(width=250)
    console.print(table)
    if not rows:
        click.echo(f"no messages between {page.since:%Y-%m-%d %H:%M} and {page.until:%Y-%m-%d %H:%M} UTC")
    elif page.more:
        click.echo(f"more: --offset {offset + limit}")


@messages.command("show")
@click.argument("ident")
@click.option("--part", "part_no", type=int, default=None, help="Write payload part N (1-based) to --output.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="As JSON (headers, parts, history, koppeltabel).")
@click.pass_context
def show_message(
    ctx: click.Context, ident: str, part_no: int | None, output: Path | None, as_json: bool
) -> None:
    """Show one message by its number or its MessageId: headers, parts, signals, attempts, and the
    messages it relates to (koppeltabel, docs/koppeltabel.md)."""
    from ggk_ebms.cli.koppeltabel_view import related_line, related_rows
    from ggk_ebms.cli.ops_support import emit_json, service_context
    from ggk_ebms.services.koppeltabel import related_of

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
        koppel = related_rows(related_of(service_context(settings_of(ctx), database), message.pk))
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
    if as_json:
        emit_json(
            {
                **dict(fields),
                "parts": [
                    {
                        "content_id": p.content_id,
                        "content_type": p.content_type,
                        "size": p.size,
                        "sha256": p.sha256,
                    }
                    for p in parts
                ],
                "signals": [
                    {
                        "id": r.pk,
                        "direction": r.direction,
                        "kind": r.kind,
                        "MessageId": r.message_id,
                        "status": r.status,
                    }
                    for r in related
                ],
                "attempts": [
                    {
                        "started_at": a.started_at,
                        "outcome": a.outcome,
                        "http_status": a.http_status,
                        "error": a.error,
                    }
                    for a in attempts
                ],
                "history": history,
                "koppeltabel": koppel,
            }
        )
        return
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
    if koppel:
        click.echo("\nkoppeltabel (related messages):")
        for row in koppel:
            click.echo(related_line(row))
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
@click.option("--force", is_flag=True, help="Also re-try a message that was refused with a Fo01.")
@click.option("--reason", default=None, help="Why a refused message is forced again (recorded).")
@click.pass_context
def retry_message_command(ctx: click.Context, ident: str, force: bool, reason: str | None) -> None:
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
        if force and not (reason or "").strip():
            fail("--force vraagt om --reason TEKST: waarom wordt een geweigerd bericht opnieuw verwerkt?")
        click.echo(retry_message(database, message.pk, now=SystemClock().now(), force=force, reason=reason))
        from ggk_ebms.cli.ops_support import service_context
        from ggk_ebms.services.audit import record

        forced = f"forced: {reason}" if force and reason else None
        record(service_context(settings_of(ctx), database), "message-retry", f"message {message.pk}", forced)
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()


@messages.command("related")
@click.argument("ident")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.pass_context
def related_messages(ctx: click.Context, ident: str, as_json: bool) -> None:
    """The koppeltabel of one message (number or MessageId): its retour, Fo01, the start, stop and
    declaraties on a toewijzing, the antwoord on a declaratie (docs/koppeltabel.md)."""
    from ggk_ebms.cli.koppeltabel_view import related_line, related_rows
    from ggk_ebms.cli.ops_support import emit_json, service_context
    from ggk_ebms.services.koppeltabel import related_of

    database, store = _store(ctx)
    try:
        message = (
            store.get(int(ident))
            if ident.isdigit()
            else (store.find("in", ident) or store.find("out", ident))
        )
        if message is None:
            fail(f"no message {ident}")
        rows = related_rows(related_of(service_context(settings_of(ctx), database), message.pk))
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if as_json:
        emit_json({"id": message.pk, "MessageId": message.message_id, "related": rows})
        return
    if not rows:
        click.echo(f"geen gerelateerde berichten voor bericht {message.pk}")
    for row in rows:
        click.echo(related_line(row))


def _open_ends(ctx: click.Context, which: str, days: int, gemeentecode: str | None, as_json: bool) -> None:
    from ggk_ebms.cli.koppeltabel_view import open_rows
    from ggk_ebms.cli.ops_support import emit_csv, emit_json, service_context
    from ggk_ebms.services import koppeltabel

    settings = settings_of(ctx)
    database = open_database(settings)
    codes = frozenset({gemeentecode}) if gemeentecode else None
    try:
        service = service_context(settings, database)
        found = (
            koppeltabel.toewijzingen_zonder_start(service, days, codes)
            if which == "start"
            else koppeltabel.declaraties_zonder_antwoord(service, days, codes)
        )
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    rows = open_rows(found)
    if as_json:
        emit_json(rows)
        return
    header = ("id", "MessageId", "direction", "berichttype", "gemeentecode", "aanbieder", "stored")
    emit_csv(header, ([row[h] for h in header] for row in rows))


@messages.command("toewijzingen-zonder-start")
@click.option(
    "--days",
    type=click.IntRange(0, 3660),
    default=10,
    show_default=True,
    help="Only toewijzingen stored more than this many days ago.",
)
@click.option("--gemeentecode", default=None, help="Only this gemeentecode.")
@click.option("--json", "as_json", is_flag=True, help="As JSON (default: CSV, semicolon-separated).")
@click.pass_context
def toewijzingen_zonder_start(ctx: click.Context, days: int, gemeentecode: str | None, as_json: bool) -> None:
    """301 toewijzingen with no 305 start zorg linked to them after N days."""
    _open_ends(ctx, "start", days, gemeentecode, as_json)


@messages.command("declaraties-zonder-antwoord")
@click.option(
    "--days",
    type=click.IntRange(0, 3660),
    default=0,
    show_default=True,
    help="Only declaraties stored more than this many days ago.",
)
@click.option("--gemeentecode", default=None, help="Only this gemeentecode.")
@click.option("--json", "as_json", is_flag=True, help="As JSON (default: CSV, semicolon-separated).")
@click.pass_context
def declaraties_zonder_antwoord(
    ctx: click.Context, days: int, gemeentecode: str | None, as_json: bool
) -> None:
    """323 declaraties with no 325 declaratie-antwoord linked to them."""
    _open_ends(ctx, "antwoord", days, gemeentecode, as_json)
