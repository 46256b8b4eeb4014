"""``ggk-ebms audit list``: who did what and when (docs/operations.md)."""

from __future__ import annotations

from datetime import datetime

import click

from ggk_ebms.cli.ops_support import call_service, emit_csv, emit_json, when
from ggk_ebms.cli.output import csv_option, json_option, paging_options
from ggk_ebms.clock import utc
from ggk_ebms.services.audit import AuditQuery, list_audit


@click.group("audit")
def audit() -> None:
    """Het audit trail: elke handeling van een beheerder."""


@audit.command("list")
@click.option("--since", type=click.DateTime(), default=None, help="Vanaf (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Tot (UTC).")
@click.option("--actor", default=None, help="Alleen deze gebruiker.")
@click.option("--action", default=None, help="Alleen deze handeling (route-set, mailbox-delete, ...).")
@paging_options(default_limit=100)
@json_option
@csv_option
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
    query = AuditQuery(
        since=utc(since) if since else None,
        until=utc(until) if until else None,
        actor=actor,
        action=action,
        limit=limit,
        offset=offset,
    )
    page = call_service(ctx, lambda context: list_audit(context, query))
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
