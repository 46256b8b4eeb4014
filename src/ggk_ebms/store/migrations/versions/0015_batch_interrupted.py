"""Aanlever batches: the status Onderbroken for a batch that a crash or stop left unfinished.

Written by hand to match ggk_ebms/store/tables.py at this revision. Values are spelled out, not
imported, so later edits of tables.py do not rewrite history.

Revision ID: 0015
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0010"
branch_labels = None
depends_on = None

# 0005 gave its name to a metadata with the naming convention, which prefixed it once more;
# this revision names it as tables.py does.
OLD_NAME = "ck_aanlever_batch_ck_aanlever_batch_status"
NEW_NAME = "ck_aanlever_batch_status"
BEFORE = "status IN ('Ontvangen', 'Bezig', 'Afgeleverd', 'Afgekeurd')"
AFTER = "status IN ('Ontvangen', 'Bezig', 'Afgeleverd', 'Afgekeurd', 'Onderbroken')"


def _table(condition: str, name: str) -> sa.Table:
    """The table as revision 0005 made it: batch mode copies from this, without reflecting the
    live database (so ``db upgrade --sql`` can print the SQL)."""

    def when(name: str, nullable: bool = False) -> sa.Column[object]:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)

    return sa.Table(
        "aanlever_batch",
        sa.MetaData(),
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("bestandsnaam", sa.String(255), nullable=False),
        sa.Column("verzender", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("aangeleverd", sa.Integer, nullable=False),
        sa.Column("correct", sa.Integer, nullable=False),
        sa.Column("incorrect", sa.Integer, nullable=False),
        when("ingeleverd_op"),
        when("begin_verwerking", nullable=True),
        when("verwacht_einde", nullable=True),
        when("einde_verwerking", nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_aanlever_batch"),
        sa.CheckConstraint(condition, name=name),
        sa.Index("ix_aanlever_batch_ingeleverd_op", "ingeleverd_op"),
    )


def _replace(old: tuple[str, str], new: tuple[str, str]) -> None:
    """(name, condition) ``old`` becomes ``new``. SQLite cannot alter a CHECK constraint: batch
    mode copies the table (alembic "batch"); PostgreSQL drops and adds it."""
    with op.batch_alter_table("aanlever_batch", recreate="auto", copy_from=_table(old[1], old[0])) as batch:
        batch.drop_constraint(op.f(old[0]), type_="check")
        batch.create_check_constraint(op.f(new[0]), new[1])


def upgrade() -> None:
    _replace((OLD_NAME, BEFORE), (NEW_NAME, AFTER))


def downgrade() -> None:
    op.execute("UPDATE aanlever_batch SET status = 'Afgekeurd' WHERE status = 'Onderbroken'")
    _replace((NEW_NAME, AFTER), (OLD_NAME, BEFORE))
