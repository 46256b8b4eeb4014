"""Root of the ``ggk-ebms`` command: global options and the subcommand groups.

Each subcommand group lives in its own module and is registered here; a command reads the
effective settings from ``ctx.obj`` (see ``settings_of``) and reports failures with
``fail``, which prints one clear line and exits non-zero instead of a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import NoReturn

import click

from ggk_ebms import __version__
from ggk_ebms.config import Settings, load
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.store.db import Database

# (module, attribute) of every command or group; a module owns its commands.
_COMMANDS: list[tuple[str, str]] = [
    ("ggk_ebms.cli.config_cmd", "config"),
    ("ggk_ebms.cli.db_cmd", "db"),
    ("ggk_ebms.cli.cpa_cmd", "cpa"),
    ("ggk_ebms.cli.devcerts_cmd", "dev_certs"),
    ("ggk_ebms.cli.serve_cmd", "serve"),
    ("ggk_ebms.cli.messages_cmd", "messages"),
    ("ggk_ebms.cli.routes_cmd", "routes"),
    ("ggk_ebms.cli.exchanges_cmd", "exchanges"),
    ("ggk_ebms.cli.mailbox_cmd", "mailbox"),
    ("ggk_ebms.cli.submit_cmd", "submit"),
    ("ggk_ebms.cli.aanleveren_cmd", "aanleveren"),
    ("ggk_ebms.cli.audit_cmd", "audit"),
    ("ggk_ebms.cli.send_cmd", "send"),
    ("ggk_ebms.cli.ping_cmd", "ping_command"),
    ("ggk_ebms.cli.worker_cmd", "worker"),
    ("ggk_ebms.cli.demo_cmd", "demo"),
    ("ggk_ebms.cli.ketendata_cmd", "ketendata"),
    ("ggk_ebms.cli.cbs_cmd", "cbs"),
    ("ggk_ebms.cli.api_token_cmd", "api_token"),
    ("ggk_ebms.cli.backup_cmd", "backup"),
    ("ggk_ebms.cli.backup_cmd", "restore"),
    ("ggk_ebms.cli.init_cmd", "init"),
    ("ggk_ebms.cli.zorgaanbieders_cmd", "zorgaanbieders"),
]


class _Lazy:
    """Holds the settings; loaded on first use so ``--help`` works without a valid config."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load(self.config_file)
        return self._settings


def settings_of(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    lazy = root.obj
    if not isinstance(lazy, _Lazy):
        lazy = _Lazy(None)
        root.obj = lazy
    try:
        return lazy.settings()
    except GgkEbmsError as exc:
        fail(str(exc))


def open_database(settings: Settings) -> Database:
    """The configured database, migrated when auto_migrate is on; failures end the command."""
    try:
        database = Database.from_settings(settings)
        database.check_not_newer()  # never run on a schema a newer version wrote
        if settings.auto_migrate:
            database.upgrade()
        elif not database.is_current():
            fail(f"database {database.display_url} is not up to date: run `ggk-ebms db upgrade`")
    except GgkEbmsError as exc:
        fail(str(exc))
    return database


def fail(message: str, code: int = 1) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="ggk-ebms")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Settings file (TOML). Default: $GGK_EBMS_CONFIG, else ./ggk-ebms.toml if present.",
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """Digikoppeling ebMS 2.0 endpoint for the iWmo/iJw/iEb traffic of the GGk."""
    ctx.obj = _Lazy(config_file)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register() -> None:
    for module_name, attr in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # command not built (yet); nothing to register
            raise
        command = getattr(module, attr)
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="ggk-ebms")
