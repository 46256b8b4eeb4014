"""``ggk-ebms mailbox``: payloads kept for pick-up (the portal's *Ophalen*, GGk handleiding:
Ophalen/berichtenlog).

``fetch`` writes the payload (personal data) to a file or stdout and sets the "gelezen" mark;
the message then counts as delivered (Forwarded).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.cli.output import Column, echo_table, emit, json_option
from ggk_ebms.delivery.forwarders.directory import write_atomically
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.store.db import Database
from ggk_ebms.store.mailbox import Mailbox, MailboxItem

ITEM_COLUMNS = [
    Column("id", "id", align_right=True),
    Column("created_at", "published (UTC)"),
    Column("gemeentecode", "gemeentecode"),
    Column("berichttype", "berichttype"),
    Column("zender", "zender"),
    Column("filename", "file"),
    Column("size", "bytes", align_right=True),
    Column("gelezen_text", "gelezen"),
]


def item_record(item: MailboxItem) -> dict[str, Any]:
    """A mailbox item as ``mailbox list --json`` gives it (docs/cli.md); never the payload."""
    return {
        "id": item.pk,
        "message_id": item.message_pk,
        "route": item.route_name,
        "gemeentecode": item.gemeentecode,
        "berichttype": item.berichttype,
        "referentienummer": item.referentienummer,
        "zender": item.zender,
        "filename": item.filename,
        "size": item.size,
        "sha256": item.sha256,
        "created_at": item.created_at,
        "gelezen": item.gelezen,
        "fetched_at": item.fetched_at,
    }


def _mailbox(ctx: click.Context) -> tuple[Database, Mailbox]:
    database = open_database(settings_of(ctx))
    return database, Mailbox(database)


@click.group("mailbox")
def mailbox() -> None:
    """Messages kept for pick-up by a domain application."""


@mailbox.command("list")
@click.option("--gemeentecode", default=None, help="Only this gemeentecode.")
@click.option("--berichttype", default=None, help="Only this berichttype (e.g. WMO305).")
@click.option("--unread", is_flag=True, help="Only items not fetched yet.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
@click.pass_context
def list_items(
    ctx: click.Context,
    gemeentecode: str | None,
    berichttype: str | None,
    unread: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List mailbox items, newest first."""
    database, box = _mailbox(ctx)
    try:
        items = box.list(
            gemeentecode=gemeentecode, berichttype=berichttype, include_fetched=not unread, limit=limit
        )
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    records = [item_record(item) for item in items]
    rows = [
        {**r, "gelezen_text": f"{r['fetched_at']:%Y-%m-%d %H:%M:%S}" if r["fetched_at"] else "no"}
        for r in records
    ]
    emit(
        {"items": records},
        as_json=as_json,
        text=lambda: echo_table(rows, ITEM_COLUMNS, empty="mailbox is empty"),
    )


@mailbox.command("fetch")
@click.argument("item_id", type=int)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the payload here (atomically). Default: standard output.",
)
@click.pass_context
def fetch(ctx: click.Context, item_id: int, output: Path | None) -> None:
    """Fetch item ITEM_ID's payload and mark it gelezen."""
    database, box = _mailbox(ctx)
    try:
        item = box.fetch(item_id)
        from ggk_ebms.cli.ops_support import service_context
        from ggk_ebms.services.audit import record

        record(service_context(settings_of(ctx), database), "mailbox-download", f"items {item_id}")
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    assert item.payload is not None  # fetch always loads the payload
    if output is None:
        sys.stdout.buffer.write(item.payload)
        sys.stdout.buffer.flush()
        return
    try:
        write_atomically(output.parent.resolve(), output.name, item.payload)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    click.echo(
        f"wrote {item.filename} ({item.size} bytes) to {output}; item {item.pk} marked gelezen", err=True
    )


# --- Ophalen as the portal (docs/operations.md) ---------------------------------------------------


def _ids(values: tuple[str, ...]) -> list[int]:
    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                if not part.strip().isdigit():
                    fail(f"'{part}' is geen nummer")
                ids.append(int(part))
    if not ids:
        fail("geef een of meer nummers")
    return ids


@mailbox.command("ophalen")
@click.option("--gemeentecode", default=None)
@click.option("--berichttype", default=None)
@click.option("--unread", is_flag=True, help="Alleen niet gedownloade berichten.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def ophalen_list(
    ctx: click.Context,
    gemeentecode: str | None,
    berichttype: str | None,
    unread: bool,
    limit: int,
    as_json: bool,
) -> None:
    """Ophalen zoals het portaal: Gedownload, Publicatiedatum, Organisatie, Titel."""
    from ggk_ebms.cli.ops_support import call_service, emit_json, when
    from ggk_ebms.services.ophalen import OphaalQuery, list_items

    query = OphaalQuery(gemeentecode=gemeentecode, berichttype=berichttype, unread_only=unread, limit=limit)
    items = call_service(ctx, lambda context: list_items(context, query))
    if as_json:
        emit_json(items)
        return
    if not items:
        click.echo("geen berichten om op te halen")
        return
    for item in items:
        click.echo(
            f"{item.id:>6}  {when(item.gedownload) or 'nee':<19}  {when(item.publicatiedatum)}  "
            f"{item.organisatie}  {item.titel}"
        )


@mailbox.command("download")
@click.argument("ids", nargs=-1, required=True)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True, help="ZIP-bestand."
)
@click.pass_context
def download_command(ctx: click.Context, ids: tuple[str, ...], output: Path) -> None:
    """Download berichten IDS (nummers, ook 1,2,3) als één ZIP en markeer ze als gelezen."""
    from ggk_ebms.cli.ops_support import call_service
    from ggk_ebms.services.ophalen import download

    numbers = _ids(ids)
    result = call_service(ctx, lambda context: download(context, numbers))
    try:
        write_atomically(output.parent.resolve(), output.name, result.data)
    except OSError as exc:
        fail(f"kan {output} niet schrijven: {exc.strerror or exc}")
    click.echo(f"{len(result.items)} bericht(en) in {output}; gemarkeerd als gelezen", err=True)


@mailbox.command("unmark")
@click.argument("ids", nargs=-1, required=True)
@click.pass_context
def unmark_command(ctx: click.Context, ids: tuple[str, ...]) -> None:
    """Haal de gelezen-markering weg, zodat de berichten niet na 168 uur verdwijnen."""
    from ggk_ebms.cli.ops_support import call_service
    from ggk_ebms.services.ophalen import unmark

    numbers = _ids(ids)
    changed = call_service(ctx, lambda context: unmark(context, numbers))
    click.echo(f"markering weggehaald: {', '.join(map(str, changed)) or 'geen'}")


@mailbox.command("delete")
@click.argument("ids", nargs=-1, required=True)
@click.pass_context
def delete_command(ctx: click.Context, ids: tuple[str, ...]) -> None:
    """Verwijder berichten uit Ophalen (ze blijven een tijd vindbaar in de berichtenlog)."""
    from ggk_ebms.cli.ops_support import call_service
    from ggk_ebms.services.ophalen import delete

    numbers = _ids(ids)
    removed = call_service(ctx, lambda context: delete(context, numbers))
    click.echo(f"verwijderd: {', '.join(map(str, removed)) or 'geen'}")
