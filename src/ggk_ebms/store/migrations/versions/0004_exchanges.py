"""Exchanges: operator changes to the shipped berichtuitwisseling defaults.

Written by hand to match ggk_ebms/store/tables.py at this revision (the metadata/migration test
compares them).

Revision ID: 0004
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0007"  # chained after the revisions merged into main first (0005, 0007)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_setting",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("exchange_key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("exchange_key", "name", name="uq_exchange_setting_exchange_key_name"),
    )


def downgrade() -> None:
    op.drop_table("exchange_setting")
