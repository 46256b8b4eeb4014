"""Web console: accounts with role and products, server-side sessions, login throttling.

Written by hand to match ggk_ebms/store/tables.py at this revision (the metadata/migration test
compares them). Values are spelled out, not imported, so later edits of tables.py do not rewrite
history.

Revision ID: 0010
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None

NAME = 255
USERNAME = 64


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "console_user",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("username", sa.String(USERNAME), nullable=False),
        sa.Column("display_name", sa.String(NAME), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("products", sa.JSON, nullable=False),
        sa.Column("personal_data", sa.Boolean, nullable=False),
        _when("created_at"),
        _when("disabled_at", nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_console_user"),
        sa.UniqueConstraint("username", name="uq_console_user_username"),
        sa.CheckConstraint(
            "role IN ('gebruikersbeheerder', 'productbeheerder', 'medewerker')", name="ck_console_user_role"
        ),
    )
    op.create_table(
        "console_session",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("user_pk", sa.BigInteger, nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        _when("created_at"),
        _when("seen_at"),
        sa.PrimaryKeyConstraint("id_hash", name="pk_console_session"),
        sa.ForeignKeyConstraint(
            ["user_pk"],
            ["console_user.pk"],
            name="fk_console_session_user_pk_console_user",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_console_session_user_pk", "console_session", ["user_pk"])
    op.create_table(
        "console_login_throttle",
        sa.Column("username", sa.String(USERNAME), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        _when("locked_until", nullable=True),
        sa.PrimaryKeyConstraint("username", name="pk_console_login_throttle"),
    )


def downgrade() -> None:
    op.drop_table("console_login_throttle")
    op.drop_index("ix_console_session_user_pk", table_name="console_session")
    op.drop_table("console_session")
    op.drop_table("console_user")
