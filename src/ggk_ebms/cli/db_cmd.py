"""``ggk-ebms db``: bring the database schema to the latest migration and report where it is.

Migrations are the hand-written alembic revisions in ggk_ebms/store/migrations/versions/; they
run programmatically, so no alembic.ini is needed wherever the command is started.
"""

from __future__ import annotations

from typing import NoReturn

import click

from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.store.db import Database


def _settings(ctx: click.Context) -> Settings:
    # cli.main imports this module while registering commands: import it on use, not at the top.
    from ggk_ebms.cli.main import settings_of

    return settings_of(ctx)


def _fail(message: str) -> NoReturn:
    from ggk_ebms.cli.main import fail

    fail(message)


@click.group("db")
def db() -> None:
    """The database: apply migrations, show the schema revision."""


@db.command("upgrade")
@click.option(
    "--sql",
    "sql_only",
    is_flag=True,
    help="Print the SQL of the pending migrations for a DBA instead of running them.",
)
@click.pass_context
def upgrade(ctx: click.Context, sql_only: bool) -> None:
    """Apply every pending migration (safe to run again) and print the revision reached."""
    if sql_only:
        _print_sql(_settings(ctx))
        return
    try:
        database = Database.from_settings(_settings(ctx))
    except GgkEbmsError as exc:
        _fail(str(exc))
    try:
        before = database.current_revision()
        database.upgrade()
        after = database.current_revision()
    except GgkEbmsError as exc:
        _fail(f"{database.display_url}: {exc}")
    finally:
        database.dispose()
    if before == after:
        click.echo(f"database {database.display_url} already at revision {after} (latest)")
    else:
        click.echo(
            f"database {database.display_url} upgraded from {before or 'empty'} to revision {after} (latest)"
        )


def _print_sql(settings: Settings) -> None:
    try:
        database = Database(settings.effective_database_url)
    except GgkEbmsError as exc:
        _fail(str(exc))
    try:
        sql = database.upgrade_sql()
    except GgkEbmsError as exc:
        _fail(f"{database.display_url}: {exc}")
    finally:
        database.dispose()
    if not sql:
        click.echo(f"-- database {database.display_url} is at the latest revision: nothing to run")
        return
    click.echo(sql, nl=False)


@db.command("current")
@click.pass_context
def current(ctx: click.Context) -> None:
    """Print the schema revision of the database and whether it is the latest."""
    database = Database(_settings(ctx).effective_database_url)
    try:
        head = database.head_revision()
        sqlite_file = database.sqlite_file
        if sqlite_file is not None and not sqlite_file.exists():
            # Do not create an empty database file just to look at it.
            click.echo(
                f"no database yet at {sqlite_file}; latest revision is {head}: run `ggk-ebms db upgrade`"
            )
            return
        revision = database.current_revision()
    except GgkEbmsError as exc:
        _fail(f"{database.display_url}: {exc}")
    finally:
        database.dispose()
    if revision == head:
        click.echo(f"{revision} (latest)")
    elif revision is None:
        click.echo(f"none (empty database); latest revision is {head}: run `ggk-ebms db upgrade`")
    else:
        click.echo(f"{revision}; latest revision is {head}: run `ggk-ebms db upgrade`")
