"""What `serve` imports at start: the CPAs of cpa_dir and the routes_file (dev defaults)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ggk_ebms.config import Settings
from ggk_ebms.server.autoimport import import_cpa_dir, import_routes_file
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.routes import RouteStore
from tests.endpoint import PROJECT_ROOT


def _settings(tmp_path: Path, **changes: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path, "cpa_dir": PROJECT_ROOT / "cpa", **changes}
    return Settings(**values)  # type: ignore[arg-type]


def test_dev_cpas_import_once(db: Database, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = list(import_cpa_dir(settings, db))
    assert len(first) == 6
    assert all("imported as" in line for line in first)
    assert list(import_cpa_dir(settings, db)) == []  # stored ones are never replaced from the folder
    assert len(CpaRepository(db).list()) == 6


def test_an_invalid_cpa_in_the_folder_is_reported_not_imported(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "cpa"
    folder.mkdir()
    (folder / "broken.xml").write_bytes(b"<not-a-cpa/>")
    lines = list(import_cpa_dir(_settings(tmp_path, cpa_dir=folder), db))
    assert len(lines) == 1
    assert "broken.xml: not imported" in lines[0]
    assert CpaRepository(db).list() == []


def test_dev_routes_route_0363_to_the_inbox(db: Database, tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    routes = shutil.copy(PROJECT_ROOT / "dev" / "routes.toml", tmp_path / "dev" / "routes.toml")
    settings = _settings(tmp_path, routes_file=Path(routes))
    lines = list(import_routes_file(settings, db))
    assert lines == [f"routes auto-import: {routes}: 1 route(s) in force"]
    assert list(import_routes_file(settings, db)) == []  # a stored table is never replaced
    stored = RouteStore(db).current()
    assert stored is not None
    match = stored.table().match("0363", "WMO305")
    assert match.route is not None
    assert Path(match.route.target.path).resolve() == (tmp_path / "var" / "inbox" / "0363").resolve()  # type: ignore[union-attr]


def test_missing_routes_file_is_said_and_nothing_stored(db: Database, tmp_path: Path) -> None:
    settings = _settings(tmp_path, routes_file=tmp_path / "nope.toml")
    lines = list(import_routes_file(settings, db))
    assert "does not exist" in lines[0]
    assert RouteStore(db).current() is None
