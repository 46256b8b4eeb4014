"""StUF-GGk delivery: the imported routing table, StUF stuurgegevens per message, the mailbox.

Written by hand to match ggk_ebms/store/tables.py at this revision (the metadata/migration test
compares them). Values are spelled out, not imported, so later edits of tables.py do not rewrite
history.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NAME = 255
REF = 64  # tables.STUF_REF_MAX at this revision
ORG = 200  # tables.STUF_ORG_MAX at this revision


def _pk() -> sa.Column[int]:
    return sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "route_set",
        _pk(),
        sa.Column("source", sa.String(NAME), nullable=False),
        sa.Column("base_dir", sa.Text, nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("route_count", sa.Integer, nullable=False),
        _when("imported_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_route_set"),
    )

    op.create_table(
        "stuf_message",
        _pk(),
        sa.Column("message_pk", sa.BigInteger, nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("berichtcode", sa.String(8), nullable=False),
        sa.Column("gemeentecode", sa.String(ORG), nullable=True),
        sa.Column("berichttype", sa.String(32), nullable=True),
        sa.Column("referentienummer", sa.String(REF), nullable=False),
        sa.Column("cross_refnummer", sa.String(REF), nullable=True),
        sa.Column("zender", sa.String(ORG), nullable=False),
        sa.Column("ontvanger", sa.String(ORG), nullable=False),
        sa.Column("tijdstip_bericht", sa.String(17), nullable=True),
        sa.Column("bericht_identificatie", sa.String(32), nullable=True),
        sa.Column("payload_sha256", sa.String(64), nullable=True),
        sa.Column("cross_ref_unknown", sa.Boolean, nullable=False),
        sa.Column("fout_code", sa.String(16), nullable=True),
        sa.Column("fout_omschrijving", sa.String(255), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_stuf_message"),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["message.pk"], name="fk_stuf_message_message_pk_message", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("message_pk", name="uq_stuf_message_message_pk"),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_stuf_message_direction"),
    )
    op.create_index("ix_stuf_message_zender_referentienummer", "stuf_message", ["zender", "referentienummer"])
    op.create_index("ix_stuf_message_referentienummer", "stuf_message", ["referentienummer"])
    op.create_index("ix_stuf_message_cross_refnummer", "stuf_message", ["cross_refnummer"])
    op.create_index(
        "ix_stuf_message_berichttype_bericht_identificatie",
        "stuf_message",
        ["berichttype", "bericht_identificatie"],
    )

    op.create_table(
        "mailbox_item",
        _pk(),
        sa.Column("message_pk", sa.BigInteger, nullable=False),
        sa.Column("route_name", sa.String(NAME), nullable=False),
        sa.Column("gemeentecode", sa.String(ORG), nullable=False),
        sa.Column("berichttype", sa.String(32), nullable=False),
        sa.Column("referentienummer", sa.String(REF), nullable=False),
        sa.Column("zender", sa.String(ORG), nullable=False),
        sa.Column("filename", sa.String(NAME), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        _when("created_at"),
        _when("fetched_at", nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_mailbox_item"),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["message.pk"], name="fk_mailbox_item_message_pk_message", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("message_pk", name="uq_mailbox_item_message_pk"),
    )
    op.create_index(
        "ix_mailbox_item_gemeentecode_berichttype", "mailbox_item", ["gemeentecode", "berichttype"]
    )


def downgrade() -> None:
    op.drop_table("mailbox_item")
    op.drop_table("stuf_message")
    op.drop_table("route_set")
