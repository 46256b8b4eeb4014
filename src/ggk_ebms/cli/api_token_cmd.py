"""``ggk-ebms api-token``: create, list and revoke the tokens of the management API.

The secret is printed once, at creation; only its hash is stored (docs/api.md, "Tokens").
"""

from __future__ import annotations

from datetime import timedelta

import click

from ggk_ebms.clock import SystemClock
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.store.api_tokens import TokenStore
from ggk_ebms.store.tables import TOKEN_SCOPES


def _store(ctx: click.Context) -> TokenStore:
    from ggk_ebms.cli.main import open_database, settings_of

    return TokenStore(open_database(settings_of(ctx)))


def _audit(ctx: click.Context, store: TokenStore, action: str, subject: str, detail: str | None) -> None:
    """One audit-trail record per token change (docs/operations.md "Audit trail")."""
    from ggk_ebms.cli.main import settings_of
    from ggk_ebms.cli.ops_support import service_context
    from ggk_ebms.services.audit import record

    record(service_context(settings_of(ctx), store.db), action, subject, detail)


@click.group("api-token")
def api_token() -> None:
    """Tokens van de beheer-API: aanmaken, tonen, intrekken."""


@api_token.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(TOKEN_SCOPES),
    help="Scope (herhaalbaar): read, send, operate of admin (admin mag alles).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=None,
    help="Geldig voor zoveel dagen (standaard: geen einde).",
)
@click.option(
    "--gemeentecode",
    "gemeentecodes",
    multiple=True,
    help="Gemeentecode waarvoor het token mag handelen (herhaalbaar; standaard: alle gemeenten).",
)
@click.pass_context
def create(
    ctx: click.Context, name: str, scopes: tuple[str, ...], days: int | None, gemeentecodes: tuple[str, ...]
) -> None:
    """Maak een token NAME aan; het geheim wordt één keer getoond."""
    from ggk_ebms.cli.main import fail

    store = _store(ctx)
    expires = SystemClock().now() + timedelta(days=days) if days else None
    try:
        token, secret = store.create(name, scopes, expires_at=expires, gemeentecodes=gemeentecodes or None)
    except (GgkEbmsError, ValueError) as exc:
        fail(str(exc))
        _audit(ctx, store, "token.create", token.name, ",".join(sorted(token.scopes)))
    finally:
        store.db.dispose()
    click.echo(secret)
    click.echo(
        f"token {token.name!r} aangemaakt met scope {', '.join(sorted(token.scopes))}; bewaar het geheim "
        "hierboven, het wordt niet nog eens getoond.",
        err=True,
    )


@api_token.command("list")
@click.pass_context
def list_tokens(ctx: click.Context) -> None:
    """Toon alle tokens (zonder geheim)."""
    store = _store(ctx)
    try:
        tokens = store.list()
    finally:
        store.db.dispose()
    if not tokens:
        click.echo("geen tokens")
        return
    for t in tokens:
        state = (
            "ingetrokken" if t.revoked_at else ("verlopen" if not t.usable(SystemClock().now()) else "actief")
        )
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "nooit"
        codes = ",".join(sorted(t.gemeentecodes)) if t.gemeentecodes is not None else "alle gemeenten"
        click.echo(
            f"{t.name}\t{t.prefix}…\t{','.join(sorted(t.scopes))}\t{codes}\t{state}\tlaatst gebruikt: {used}"
        )


@api_token.command("revoke")
@click.argument("name")
@click.pass_context
def revoke(ctx: click.Context, name: str) -> None:
    """Trek token NAME in; het werkt direct niet meer."""
    from ggk_ebms.cli.main import fail

    store = _store(ctx)
    try:
        store.revoke(name)
    except GgkEbmsError as exc:
        fail(str(exc))
        _audit(ctx, store, "token.revoke", name, None)
    finally:
        store.db.dispose()
    click.echo(f"token {name!r} ingetrokken")
