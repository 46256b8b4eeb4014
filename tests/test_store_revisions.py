"""store/revisions.py: the head revision read from the scripts, the database's from its table."""

from __future__ import annotations

from pathlib import Path

import pytest

from ggk_ebms.store.db import MIGRATIONS_DIR, Database
from ggk_ebms.store.revisions import database_revisions, script_heads


def test_script_heads_agree_with_alembic(db: Database) -> None:
    assert script_heads(MIGRATIONS_DIR / "versions") == {db.head_revision()}


def test_a_migrated_database_records_the_head(db: Database) -> None:
    with db.connection() as conn:
        assert database_revisions(conn) == script_heads(MIGRATIONS_DIR / "versions")
    assert db.is_current()


def test_a_new_database_records_nothing(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        with database.connection() as conn:
            assert database_revisions(conn) == set()
        assert not database.is_current()
    finally:
        database.dispose()


def write(folder: Path, name: str, revision: str, down: str | tuple[str, ...] | None) -> None:
    (folder / f"{name}.py").write_text(
        f'"""{name}."""\nrevision = {revision!r}\ndown_revision: object = {down!r}\n', encoding="utf-8"
    )


def test_heads_of_a_chain_a_branch_and_a_merge(tmp_path: Path) -> None:
    write(tmp_path, "a", "0001", None)
    write(tmp_path, "b", "0002", "0001")
    assert script_heads(tmp_path) == {"0002"}
    write(tmp_path, "c", "0003", "0001")
    assert script_heads(tmp_path) == {"0002", "0003"}
    write(tmp_path, "d", "0004", ("0002", "0003"))
    assert script_heads(tmp_path) == {"0004"}


def test_a_script_without_a_literal_revision_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("revision = make()\ndown_revision = None\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"malformed|literal"):
        script_heads(tmp_path)
