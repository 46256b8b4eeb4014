"""``ggk-ebms messages``: the message log for the productbeheerder (received and sent, signals too).

Only headers, sizes, digests and statuses are shown; payload bytes are not printed unless asked
for with ``show --part N -o FILE`` (payloads hold personal
data, iStandaarden privacy elements, docs/rules.md).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.cli.message_view import history_rows, lifecycle_fields
from ggk_ebms.cli.output import Column, csv_option, echo_fields, echo_table, emit, json_option, paging_options
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import Attempt, JobQueue
from ggk_ebms.store.messages import MessageStore, StoredMessage, StoredPart


def _store(ctx: click.Context) -> tuple[Database, MessageStore]:
    database = open_database(settings_of(ctx))
    return database, MessageStore(database)


def message_record(m: StoredMessage) -> dict[str, Any]:
    """One message as ``messages list --json`` and ``messages show --json`` give it (docs/cli.md)."""
    return {
        "id": m.pk,
        "direction": m.direction,
        "kind": m.kind,
        "status": m.status,
        "status_reason": m.status_reason,
        "error_code": m.error_code,
        # The StUF business layer of the lifecycle (docs/rules.md); null for signals and non-StUF.
        "business_status": m.business_status,
        "business_code": m.business_code,
        "business_reason": m.business_reason,
        "business_ref_id": m.business_ref_pk,
        "message_id": m.message_id,
        "ref_to_message_id": m.ref_to_message_id,
        "cpa_id": m.cpa_id,
        "conversation_id": m.conversation_id,
        "from_party_id": m.from_party_id,
        "from_party_type": m.from_party_type,
        "from_role": m.from_role,
        "to_party_id": m.to_party_id,
        "to_party_type": m.to_party_type,
        "to_role": m.to_role,
        "service": m.service,
        "service_type": m.service_type,
        "action": m.action,
        "timestamp": m.timestamp,
        "time_to_live": m.time_to_live,
        "sync_reply": m.sync_reply,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    }


def _part_record(seq: int, part: StoredPart) -> dict[str, Any]:
    # Never the bytes: payloads hold personal data (StUF-GGk; docs/security.md).
    return {
        "seq": seq,
        "content_id": part.content_id,
        "content_type": part.content_type,
        "size": part.size,
        "sha256": part.sha256,
    }


def _attempt_record(attempt: Attempt) -> dict[str, Any]:
    return {
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "outcome": attempt.outcome,
        "http_status": attempt.http_status,
        "error": attempt.error,
    }


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
@paging_options(default_limit=50)
@json_option
@csv_option
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
    from ggk_ebms.cli.ops_support import call_service, emit_csv, emit_json
    from ggk_ebms.clock import utc
    from ggk_ebms.services.berichtenlog import LogFilter, berichtenlog

    query = LogFilter(
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
    )
    page = call_service(ctx, lambda context: berichtenlog(context, query))
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
    if not rows:
        click.echo(f"no messages between {page.since:%Y-%m-%d %H:%M} and {page.until:%Y-%m-%d %H:%M} UTC")
        return
    # One line per message, never wrapped or cut (cli/output.py), also when piped.
    table_rows = [dict(zip(header, row, strict=True)) for row in rows]
    echo_table(table_rows, [Column(h, h) for h in header], empty="")
    if page.more:
        click.echo(f"more: --offset {offset + limit}")


@messages.command("show")
@click.argument("ident")
@click.option("--part", "part_no", type=int, default=None, help="Write payload part N (1-based) to --output.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None)
@json_option
@click.pass_context
def show_message(
    ctx: click.Context, ident: str, part_no: int | None, output: Path | None, as_json: bool
) -> None:
    """Show one message by its number or its MessageId: headers, parts, signals, attempts, and the
    messages it relates to (koppeltabel, docs/koppeltabel.md)."""
    from ggk_ebms.cli.koppeltabel_view import related_line, related_rows
    from ggk_ebms.cli.ops_support import service_context
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
    document = {
        "message": message_record(message),
        "parts": [_part_record(i, part) for i, part in enumerate(parts, 1)],
        "related": [
            {
                "id": r.pk,
                "direction": r.direction,
                "kind": r.kind,
                "message_id": r.message_id,
                "status": r.status,
            }
            for r in related
        ],
        "attempts": [_attempt_record(a) for a in attempts],
        "history": history,
        "koppeltabel": koppel,
    }

    def text() -> None:
        _show_text(message, parts, related, attempts, history)
        if koppel:
            click.echo("\nkoppeltabel (related messages):")
            for row in koppel:
                click.echo(related_line(row))

    emit(document, as_json=as_json, text=text)


def _show_text(
    message: StoredMessage,
    parts: list[StoredPart],
    related: list[StoredMessage],
    attempts: list[Attempt],
    history: list[dict[str, str]],
) -> None:
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
    echo_fields(fields)
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
@click.option("--force", is_flag=True, help="Also re-try a message that was refused with a Fo01.")
@click.option("--reason", default=None, help="Why a refused message is forced again (recorded).")
@click.pass_context
def retry_message_command(ctx: click.Context, ident: str, force: bool, reason: str | None) -> None:
    """Queue a Failed message again, by number or MessageId (received: deliver; sent: send)."""
    from ggk_ebms.cli.ops_support import service_context
    from ggk_ebms.services.opnieuw import Retry, retry

    database, _ = _store(ctx)
    try:
        result = retry(service_context(settings_of(ctx), database), Retry(ident, force, reason))
        click.echo(result.gedaan)
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
