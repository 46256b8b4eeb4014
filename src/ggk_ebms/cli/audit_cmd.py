"""``ggk-ebms audit list``: who did what and when (docs/operations.md)."""

from __future__ import annotations

from datetime import datetime

import click

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.cli.ops_support import emit_csv, emit_json, service_context, when
from ggk_ebms.clock import utc
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.services.audit import AuditQuery, list_audit


@click.group("audit")
def audit() -> None:
    """Het audit trail: elke handeling van een beheerder."""


@audit.command("list")
@click.option("--since", type=click.DateTime(), default=None, help="Vanaf (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Tot (UTC).")
@click.option("--actor", default=None, help="Alleen deze gebruiker.")
@click.option("--action", default=None, help="Alleen deze handeling (route-set, mailbox-delete, ...).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.pass_context
def list_command(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    actor: str | None,
    action: str | None,
    limit: int,
    offset: int,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Handelingen, nieuwste eerst."""
    settings = settings_of(ctx)
    database = open_database(settings)
    try:
        page = list_audit(
            service_context(settings, database),
            AuditQuery(
                since=utc(since) if since else None,
                until=utc(until) if until else None,
                actor=actor,
                action=action,
                limit=limit,
                offset=offset,
            ),
        )
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if as_json:
        emit_json(page)
        return
    rows = [(e.at, e.actor, e.action, e.subject, e.detail) for e in page.events]
    if as_csv:
        emit_csv(("tijdstip", "gebruiker", "handeling", "onderwerp", "detail"), rows)
        return
    if not rows:
        click.echo("geen handelingen")
    for at, who, what, subject, detail in rows:
        click.echo(f"{when(at)}  {who}  {what}  {subject}" + (f"  {detail}" if detail else ""))
    if page.more:
        click.echo(f"… meer: --offset {offset + limit}")
