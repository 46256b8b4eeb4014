"""A settings file for driving ``ggk-ebms`` through click's CliRunner, and the call itself.

The commands read their settings from a TOML file (docs/configuration.md); these tests give them
one on SQLite in a temporary folder with the development CPA (cpa/dev-osb-rm.xml) to import.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from click.testing import CliRunner, Result

from ggk_ebms.cli.main import cli
from tests.conftest import PROJECT_ROOT

DEV_CPA = PROJECT_ROOT / "cpa" / "dev-osb-rm.xml"


def dev_cpa_folder(folder: Path) -> Path:
    """``folder`` (made when missing) holding a copy of the development CPA."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEV_CPA, folder / DEV_CPA.name)
    return folder


def settings_file(tmp: Path, settings: str) -> Path:
    """``tmp/ggk-ebms.toml``: data in ``tmp/var``, the development CPA in ``tmp/cpa``, then ``settings``."""
    cpa = dev_cpa_folder(tmp / "cpa")
    path = tmp / "ggk-ebms.toml"
    path.write_text(f'data_dir = "{tmp / "var"}"\ncpa_dir = "{cpa}"\n{settings}', encoding="utf-8")
    return path


def invoke(config: Path, *args: str, env: Mapping[str, str] | None = None) -> Result:
    """``ggk-ebms --config CONFIG ARGS``; wide enough that tables never fold their cells."""
    return CliRunner().invoke(
        cli, ["--config", str(config), *args], catch_exceptions=False, env={"COLUMNS": "250", **(env or {})}
    )
