"""``ggk-ebms user``: console accounts from the command line, above all the first gebruikersbeheerder.

The password is asked twice without echo, or read from the environment variable
GGK_EBMS_USER_PASSWORD (for scripts); it is never an argument, which would show in ``ps``.
"""

from __future__ import annotations

import os

import click

from ggk_ebms.console.rights import PRODUCTS, ROLES
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.services import gebruikers


@click.group("user")
def user() -> None:
    """Accounts van de webconsole: aanmaken, tonen, wijzigen."""


@user.command("create")
@click.argument("username")
@click.option("--name", "display_name", default="", help="Naam zoals de console die toont.")
@click.option("--role", type=click.Choice(ROLES), default="gebruikersbeheerder", show_default=True)
@click.option(
    "--product",
    "products",
    multiple=True,
    type=click.Choice(tuple(PRODUCTS)),
    help="Product waarvoor het account rechten krijgt (herhaalbaar; standaard: alle).",
)
@click.option("--personal-data/--no-personal-data", default=False, help="Mag BSN en namen zien.")
@click.option(
    "--gemeentecode",
    "gemeentecodes",
    multiple=True,
    help="Gemeentecode waarvoor het account mag werken (herhaalbaar; standaard: alle gemeenten).",
)
@click.pass_context
def create(
    ctx: click.Context,
    username: str,
    display_name: str,
    role: str,
    products: tuple[str, ...],
    personal_data: bool,
    gemeentecodes: tuple[str, ...],
) -> None:
    """Maak account USERNAME aan (het eerste account: een gebruikersbeheerder)."""
    from ggk_ebms.cli.main import fail, open_database, settings_of
    from ggk_ebms.cli.ops_support import service_context

    password = os.environ.get("GGK_EBMS_USER_PASSWORD") or click.prompt(
        "Wachtwoord", hide_input=True, confirmation_prompt=True
    )
    settings = settings_of(ctx)
    database = open_database(settings)
    try:
        made = gebruikers.create_user(
            service_context(settings, database),
            username=username,
            display_name=display_name,
            password=password,
            role=role,
            products=products or tuple(PRODUCTS),
            personal_data=personal_data,
            gemeentecodes=gemeentecodes or None,
        )
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    click.echo(
        f"account {made.username} ({made.role}; {', '.join(sorted(made.products))}; "
        f"gemeenten {_codes(made.gemeentecodes)}) aangemaakt"
    )


@user.command("list")
@click.pass_context
def list_users(ctx: click.Context) -> None:
    """Toon de accounts."""
    from ggk_ebms.cli.main import open_database, settings_of
    from ggk_ebms.cli.ops_support import service_context

    settings = settings_of(ctx)
    database = open_database(settings)
    try:
        for u in gebruikers.list_users(service_context(settings, database)):
            state = "geblokkeerd" if u.disabled_at else "actief"
            click.echo(
                f"{u.username}\t{u.role}\t{','.join(sorted(u.products))}\t{_codes(u.gemeentecodes)}\t{state}"
            )
    finally:
        database.dispose()


def _codes(codes: frozenset[str] | None) -> str:
    return "alle" if codes is None else ",".join(sorted(codes))


@user.command("gemeenten")
@click.argument("username")
@click.option(
    "--gemeentecode",
    "gemeentecodes",
    multiple=True,
    help="Gemeentecode waarvoor het account mag werken (herhaalbaar).",
)
@click.option("--alle", is_flag=True, help="Het account mag voor alle gemeenten werken.")
@click.pass_context
def gemeenten(ctx: click.Context, username: str, gemeentecodes: tuple[str, ...], alle: bool) -> None:
    """Zet de gemeentecodes waarvoor account USERNAME mag werken."""
    from ggk_ebms.cli.main import fail, open_database, settings_of
    from ggk_ebms.cli.ops_support import service_context

    if alle == bool(gemeentecodes):
        fail("geef --gemeentecode (een of meer keer) of --alle")
    settings = settings_of(ctx)
    database = open_database(settings)
    try:
        changed = gebruikers.update_user(
            service_context(settings, database), username, gemeentecodes=None if alle else gemeentecodes
        )
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    click.echo(f"account {changed.username}: gemeenten {_codes(changed.gemeentecodes)}")
