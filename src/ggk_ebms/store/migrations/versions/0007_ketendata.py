"""Ketendata: keys used, exports, their files for pick-up, and delivered duplicate keys.

Written by hand to match ggk_ebms/store/tables.py at this revision (the metadata/migration test
compares them). Values are spelled out, not imported, so later edits of tables.py do not rewrite
history.

Revision ID: 0007
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME = 255


def _pk() -> sa.Column[int]:
    return sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ketendata_key",
        _pk(),
        sa.Column("key_id", sa.String(32), nullable=False),
        _when("activated_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_ketendata_key"),
        sa.UniqueConstraint("key_id", name="uq_ketendata_key_key_id"),
    )
    op.create_table(
        "ketendata_export",
        _pk(),
        sa.Column("kind", sa.String(16), nullable=False),
        _when("period_since", nullable=True),
        _when("period_until"),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("duplicates", sa.Integer, nullable=False),
        _when("created_at"),
        _when("expires_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_ketendata_export"),
        sa.CheckConstraint("kind IN ('weekly', 'period', 'historie')", name="ck_ketendata_export_kind"),
    )
    op.create_index("ix_ketendata_export_kind_period_until", "ketendata_export", ["kind", "period_until"])
    op.create_table(
        "ketendata_file",
        _pk(),
        sa.Column("export_pk", sa.BigInteger, nullable=False),
        sa.Column("filename", sa.String(NAME), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        _when("created_at"),
        _when("fetched_at", nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_ketendata_file"),
        sa.ForeignKeyConstraint(
            ["export_pk"],
            ["ketendata_export.pk"],
            name="fk_ketendata_file_export_pk_ketendata_export",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("export_pk", "filename", name="uq_ketendata_file_export_pk_filename"),
    )
    op.create_index("ix_ketendata_file_fetched_at", "ketendata_file", ["fetched_at"])
    op.create_table(
        "ketendata_seen",
        _pk(),
        sa.Column("dedupe_key", sa.String(64), nullable=False),
        sa.Column("export_pk", sa.BigInteger, nullable=True),
        _when("seen_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_ketendata_seen"),
        sa.UniqueConstraint("dedupe_key", name="uq_ketendata_seen_dedupe_key"),
    )


def downgrade() -> None:
    op.drop_table("ketendata_seen")
    op.drop_table("ketendata_file")
    op.drop_table("ketendata_export")
    op.drop_table("ketendata_key")
