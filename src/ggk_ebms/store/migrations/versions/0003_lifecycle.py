"""The message lifecycle: the business layer on each message and every message's history.

Written by hand to match ggk_ebms/store/tables.py at this revision (the metadata/migration test
compares them). Values are spelled out, not imported, so later edits of tables.py do not rewrite
history.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("business_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("business_code", sa.String(16), nullable=True))
        batch.add_column(sa.Column("business_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("business_ref_pk", sa.BigInteger, nullable=True))
    op.create_index("ix_message_business_status", "message", ["business_status"])
    op.create_table(
        "message_event",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "message_pk",
            sa.BigInteger,
            sa.ForeignKey("message.pk", ondelete="CASCADE", name="fk_message_event_message_pk_message"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("layer", sa.String(8), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("rule", sa.String(255), nullable=False),
        sa.CheckConstraint("layer IN ('ebms', 'business')", name="ck_message_event_layer"),
        sa.PrimaryKeyConstraint("pk", name="pk_message_event"),
    )
    op.create_index("ix_message_event_message_pk", "message_event", ["message_pk"])


def downgrade() -> None:
    op.drop_index("ix_message_event_message_pk", table_name="message_event")
    op.drop_table("message_event")
    op.drop_index("ix_message_business_status", table_name="message")
    with op.batch_alter_table("message") as batch:
        batch.drop_column("business_ref_pk")
        batch.drop_column("business_reason")
        batch.drop_column("business_code")
        batch.drop_column("business_status")
