"""CLI start-up stays light: what ``--version``, ``--help`` and each command import.

No timings here (they live in ``bench cli`` and docs/performance.md): these tests look at which
modules a fresh interpreter has loaded, via ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from ggk_ebms.cli import main

HEAVY = ("sqlalchemy", "alembic", "aiohttp", "xmlsec", "zeep", "rich", "lxml", "cryptography")


def loaded_by(program: str, env: dict[str, str] | None = None) -> set[str]:
    """The heavy top-level packages a fresh interpreter holds after running ``program``."""
    probe = (
        "import json, sys\n"
        "try:\n"
        f"{''.join('    ' + line + chr(10) for line in program.splitlines())}"
        "except SystemExit:\n"
        "    pass\n"
        f"sys.stderr.write(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return set(json.loads(done.stderr.splitlines()[-1]))


def run_cli(*args: str) -> str:
    return f"from ggk_ebms.cli.main import cli\ncli({list(args)!r}, prog_name='ggk-ebms')"


@pytest.mark.slow  # starts a fresh interpreter
@pytest.mark.parametrize("args", [("--version",), ("--help",), ("-h",)])
def test_version_and_help_import_no_heavy_library(args: tuple[str, ...]) -> None:
    assert loaded_by(run_cli(*args)) == set()


@pytest.mark.slow  # starts a fresh interpreter
@pytest.mark.parametrize("group", ["cpa", "messages", "routes", "mailbox", "config"])
def test_a_groups_help_loads_no_http_stack(group: str) -> None:
    assert not loaded_by(run_cli(group, "--help")) & {"aiohttp", "xmlsec", "zeep", "rich"}


@pytest.mark.slow  # starts a fresh interpreter
@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("config_cmd", {"cryptography", "lxml"}),  # certificates and CPAs are read by config check
        ("cpa_cmd", {"cryptography", "lxml"}),  # validate/create work on XML and certificates only
        ("db_cmd", {"sqlalchemy", "alembic"}),
        ("demo_cmd", set()),
        ("devcerts_cmd", set()),
        ("messages_cmd", {"sqlalchemy"}),
        ("routes_cmd", {"sqlalchemy", "lxml", "cryptography"}),
        ("mailbox_cmd", {"sqlalchemy", "lxml", "cryptography"}),
    ],
)
def test_each_command_module_imports_only_what_it_needs(module: str, allowed: set[str]) -> None:
    loaded = loaded_by(f"import ggk_ebms.cli.{module}")
    assert loaded <= allowed, f"{module} imports {sorted(loaded - allowed)} at start"
    # No command that only reads the log, the routes or the settings starts an HTTP stack or xmlsec.
    assert not loaded & {"aiohttp", "xmlsec", "zeep", "rich"}


def test_help_summaries_match_the_commands() -> None:
    """The root --help shows summaries from main._COMMANDS without importing the commands: they
    must say what each command's own docstring says."""
    ctx = click.Context(main.cli)
    for entry in main._COMMANDS:
        command = main.cli.get_command(ctx, entry.name)
        assert command is not None, entry.name
        assert command.name == entry.name
        stand_in = click.Command(entry.name, help=entry.summary)
        assert stand_in.get_short_help_str(1000) == command.get_short_help_str(1000), entry.name


def test_every_command_module_is_registered() -> None:
    from pathlib import Path

    folder = Path(main.__file__).parent
    modules = {f"ggk_ebms.cli.{p.stem}" for p in folder.glob("*_cmd.py")}
    assert modules == {entry.module for entry in main._COMMANDS}


@pytest.mark.slow  # starts a fresh interpreter
def test_listing_a_current_database_needs_no_alembic(tmp_path: Path) -> None:
    """alembic is for migrating: a database already at head is recognised without it."""
    env = {"GGK_EBMS_DATA_DIR": str(tmp_path), "GGK_EBMS_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    first = loaded_by(run_cli("messages", "list", "--json"), env)
    assert "alembic" in first  # a new database: migrated on first use (auto_migrate)
    again = loaded_by(run_cli("messages", "list", "--json"), env)
    # No alembic (and no HTTP or signature stack) for a database at head. lxml and cryptography
    # come with the berichtenlog's koppeltabel catch-up, which reads new payloads (docs/koppeltabel.md).
    assert "sqlalchemy" in again and again <= {"sqlalchemy", "lxml", "cryptography"}
