"""The schema revision, known without importing alembic: for commands that only need to know
"is this database up to date?" before they read it.

alembic (and with it every SQL dialect it ships) costs a noticeable share of a short CLI call's
start-up (docs/performance.md, "CLI start-up"). The head revision is read from the migration
scripts' own ``revision``/``down_revision`` assignments (parsed, not imported) and the database's
revision from alembic's version table with one plain query. Only when they differ does
``Database.upgrade`` hand over to alembic.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sqlalchemy as sa

VERSION_TABLE = "alembic_version"  # alembic's default; migrations/env.py keeps it


def _assigned(module: ast.Module, name: str) -> object:
    for node in module.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if value is not None and any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return ast.literal_eval(value)
    raise ValueError(f"no literal {name} assignment")


def script_heads(versions_dir: Path) -> set[str]:
    """The revisions no other migration script builds on: the head(s) alembic would upgrade to."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions_dir.glob("*.py"):
        module = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        revision = _assigned(module, "revision")
        down = _assigned(module, "down_revision")
        if not isinstance(revision, str):
            raise ValueError(f"{path.name}: revision is not a string")
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list):
            parents.update(str(d) for d in down)
    return revisions - parents


def database_revisions(conn: sa.Connection) -> set[str]:
    """The revision(s) alembic recorded in the database; empty when it was never migrated."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return set()
    rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608 - constant
    return {str(row[0]) for row in rows}
