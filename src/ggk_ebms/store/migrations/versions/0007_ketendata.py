"""Ketendata (keys used, exports, their files for pick-up, delivered duplicate keys) and the CBS
Monitor Sociaal Domein (deliveries, reports, reminders sent).

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
down_revision = "0005"
branch_labels = None
depends_on = None

NAME = 255
REF = 64  # tables.STUF_REF_MAX at this revision


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

    op.create_table(
        "cbs_delivery",
        _pk(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("referentienummer", sa.String(15), nullable=False),
        sa.Column("filename", sa.String(NAME), nullable=False),
        sa.Column("cbs_set", sa.String(32), nullable=True),
        sa.Column("gemeentecode", sa.String(4), nullable=False),
        sa.Column("verslagperiode", sa.String(6), nullable=True),
        sa.Column("stuf_referentienummer", sa.String(REF), nullable=False),
        sa.Column("message_pk", sa.BigInteger, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_cbs_delivery"),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["message.pk"], name="fk_cbs_delivery_message_pk_message", ondelete="SET NULL"
        ),
        sa.UniqueConstraint("referentienummer", name="uq_cbs_delivery_referentienummer"),
        sa.CheckConstraint("kind IN ('aanlevering', 'toestemming')", name="ck_cbs_delivery_kind"),
    )
    op.create_index("ix_cbs_delivery_stuf_referentienummer", "cbs_delivery", ["stuf_referentienummer"])
    op.create_table(
        "cbs_report",
        _pk(),
        sa.Column("mailbox_item_pk", sa.BigInteger, nullable=False),
        sa.Column("delivery_pk", sa.BigInteger, nullable=True),
        sa.Column("filename", sa.String(NAME), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_cbs_report"),
        sa.ForeignKeyConstraint(
            ["mailbox_item_pk"],
            ["mailbox_item.pk"],
            name="fk_cbs_report_mailbox_item_pk_mailbox_item",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["delivery_pk"],
            ["cbs_delivery.pk"],
            name="fk_cbs_report_delivery_pk_cbs_delivery",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("mailbox_item_pk", name="uq_cbs_report_mailbox_item_pk"),
    )
    op.create_table(
        "cbs_notification",
        _pk(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("verslagperiode", sa.String(6), nullable=False),
        _when("sent_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_cbs_notification"),
        sa.UniqueConstraint("kind", "verslagperiode", name="uq_cbs_notification_kind_verslagperiode"),
    )


def downgrade() -> None:
    op.drop_table("cbs_notification")
    op.drop_table("cbs_report")
    op.drop_table("cbs_delivery")
    op.drop_table("ketendata_seen")
    op.drop_table("ketendata_file")
    op.drop_table("ketendata_export")
    op.drop_table("ketendata_key")
