"""Root of the ``ggk-ebms`` command: global options and the subcommand groups.

Each subcommand group lives in its own module and is registered here; a command reads the
effective settings from ``ctx.obj`` (see ``settings_of``) and reports failures with
``fail``, which prints one clear line and exits non-zero instead of a traceback.

Start-up is lazy: this module imports only click and the settings loader. A command's module
(and with it SQLAlchemy, aiohttp, xmlsec, zeep ...) is imported only when that command runs, so
``--version``, ``--help`` and light commands start fast (figures in docs/performance.md). The root
``--help`` lists the commands from the summaries in ``_COMMANDS`` without importing them;
tests/test_cli_startup.py keeps each summary equal to its command's own help.
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from ggk_ebms import __version__
from ggk_ebms.config import Settings, load
from ggk_ebms.errors import GgkEbmsError

if TYPE_CHECKING:
    from ggk_ebms.store.db import Database


@dataclass(frozen=True)
class CommandEntry:
    """A command of the root group: its name, where it lives, and its one-line summary."""

    name: str
    module: str
    attribute: str
    summary: str  # the first sentence of the command's docstring, shown by the root --help


# Every command or group; a module owns its commands. Imported only when used.
_COMMANDS: list[CommandEntry] = [
    CommandEntry("config", "ggk_ebms.cli.config_cmd", "config",
                 "Settings: show them, check them, write their documentation."),
    CommandEntry("db", "ggk_ebms.cli.db_cmd", "db",
                 "The database: apply migrations, show the schema revision."),
    CommandEntry("cpa", "ggk_ebms.cli.cpa_cmd", "cpa",
                 "Validate, import, inspect and create CPAs (Collaboration Protocol Agreements)."),
    CommandEntry("dev-certs", "ggk_ebms.cli.devcerts_cmd", "dev_certs",
                 "Create a TEST CA plus server and client certificates for a test gemeente and RINIS."),
    CommandEntry("serve", "ggk_ebms.cli.serve_cmd", "serve",
                 "Run the ebMS endpoint: HTTPS with mutual TLS on host:port/path."),
    CommandEntry("messages", "ggk_ebms.cli.messages_cmd", "messages",
                 "The message log: what was received and sent, with status."),
    CommandEntry("routes", "ggk_ebms.cli.routes_cmd", "routes",
                 "The routing table: (gemeentecode, berichttype) -> target."),
    CommandEntry("mailbox", "ggk_ebms.cli.mailbox_cmd", "mailbox",
                 "Messages kept for pick-up by a domain application."),
    CommandEntry("submit", "ggk_ebms.cli.submit_cmd", "submit",
                 "Wrap (if needed) and queue FILES for sending to the GGk."),
    CommandEntry("aanleveren", "ggk_ebms.cli.aanleveren_cmd", "aanleveren",
                 "Lever een ZIP of XML-bestanden aan (Aanleveren) en bekijk de verwerkingsverslagen."),
    CommandEntry("audit", "ggk_ebms.cli.audit_cmd", "audit",
                 "Het audit trail: elke handeling van een beheerder."),
    CommandEntry("send", "ggk_ebms.cli.send_cmd", "send",
                 "Queue a message with FILE... as payload parts; prints its MessageId."),
    CommandEntry("ping", "ggk_ebms.cli.ping_cmd", "ping_command",
                 "Send an ebMS Ping and report the Pong with its round trip, or what is wrong."),
    CommandEntry("worker", "ggk_ebms.cli.worker_cmd", "worker",
                 "Send queued messages and signals, and deliver received ones, until stopped (the workers "
                 "of `serve`, on their own)."),
    CommandEntry("demo", "ggk_ebms.cli.demo_cmd", "demo",
                 "Run the dev gemeente and the dev RINIS on loopback: Ping/Pong and a reliable message "
                 "both ways."),
    CommandEntry("exchanges", "ggk_ebms.cli.exchanges_cmd", "exchanges",
                 "Berichtuitwisselingen: per pair of berichttypen how they travel and in which versions."),
    CommandEntry("ketendata", "ggk_ebms.cli.ketendata_cmd", "ketendata",
                 "Ketendata: bestanden per berichttype uit het eigen berichtenverkeer."),
    CommandEntry("cbs", "ggk_ebms.cli.cbs_cmd", "cbs",
                 "CBS Monitor Sociaal Domein: bestanden en toestemming via RINIS."),
    CommandEntry("api-token", "ggk_ebms.cli.api_token_cmd", "api_token",
                 "Tokens van de beheer-API: aanmaken, tonen, intrekken."),
    CommandEntry("init", "ggk_ebms.cli.init_cmd", "init",
                 "Set up an installation: check the answers, write the settings file, create the database."),
    CommandEntry("backup", "ggk_ebms.cli.backup_cmd", "backup",
                 "Back up the database (online; the server may keep running), settings file and "
                 "certificates."),
    CommandEntry("restore", "ggk_ebms.cli.backup_cmd", "restore",
                 "Restore a backup into the configured database, which must be empty."),
    CommandEntry("user", "ggk_ebms.cli.user_cmd", "user",
                 "Accounts van de webconsole: aanmaken, tonen, wijzigen."),
    CommandEntry("zorgaanbieders", "ggk_ebms.cli.zorgaanbieders_cmd", "zorgaanbieders",
                 "The zorgaanbieders: AGB code, name, reachable, and first/last message seen."),
]  # fmt: skip


class LazyGroup(click.Group):
    """The root group: commands are imported when invoked, summaries come from ``_COMMANDS``."""

    def __init__(self, *args: object, entries: list[CommandEntry], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._entries = {entry.name: entry for entry in entries}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._entries})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry = self._entries.get(cmd_name)
        if entry is None:
            return None
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of --help, without importing any command module."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows: list[tuple[str, str]] = []
        for name in names:
            entry = self._entries.get(name)
            if entry is not None and entry.summary and name not in self.commands:
                # A stand-in command formats the summary exactly as click formats a docstring.
                rows.append((name, click.Command(name, help=entry.summary).get_short_help_str(limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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
    from ggk_ebms.store.db import Database  # SQLAlchemy only for the commands that use a database

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


@click.group(
    cls=LazyGroup,
    entries=_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
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


def main() -> None:
    cli(prog_name="ggk-ebms")
