"""The koppeltabel (keys read per message, the relations between messages) and the register of
zorgaanbieders, and the gemeentecodes an API token may act for.

Written by hand to match ggk_ebms/store/tables.py at this revision (the metadata/migration test
compares them). Values are spelled out, not imported, so later edits of tables.py do not rewrite
history.

Revision ID: 0012
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0015"  # chained after the revisions merged into main first (0010, 0015)
branch_labels = None
depends_on = None

REF = 64
ORG = 200
VALUE = 255
NAME = 255


def _pk() -> sa.Column[int]:
    return sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _message_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["message.pk"], name=f"fk_{table}_{column}_message", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "koppel_message",
        sa.Column("message_pk", sa.BigInteger, nullable=False),
        sa.Column("berichtcode", sa.String(8), nullable=True),
        sa.Column("berichttype", sa.String(32), nullable=True),
        sa.Column("referentienummer", sa.String(REF), nullable=True),
        sa.Column("cross_refnummer", sa.String(REF), nullable=True),
        sa.Column("zender", sa.String(ORG), nullable=True),
        sa.Column("ontvanger", sa.String(ORG), nullable=True),
        sa.Column("gemeentecode", sa.String(ORG), nullable=True),
        sa.Column("aanbieder", sa.String(ORG), nullable=True),
        sa.Column("afzender", sa.String(ORG), nullable=True),
        sa.Column("identificatie", sa.String(VALUE), nullable=True),
        _when("indexed_at"),
        sa.PrimaryKeyConstraint("message_pk", name="pk_koppel_message"),
        _message_fk("koppel_message", "message_pk"),
    )
    op.create_index("ix_koppel_message_berichttype", "koppel_message", ["berichttype"])
    op.create_table(
        "koppel_key",
        _pk(),
        sa.Column("message_pk", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.String(VALUE), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_koppel_key"),
        _message_fk("koppel_key", "message_pk"),
        sa.UniqueConstraint("message_pk", "name", "value", name="uq_koppel_key_message_pk_name_value"),
    )
    op.create_index("ix_koppel_key_name_value", "koppel_key", ["name", "value"])
    op.create_table(
        "koppel_relation",
        _pk(),
        sa.Column("earlier_pk", sa.BigInteger, nullable=False),
        sa.Column("later_pk", sa.BigInteger, nullable=False),
        sa.Column("relation", sa.String(16), nullable=False),
        sa.Column("via", sa.String(32), nullable=False),
        sa.Column("value", sa.String(VALUE), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_koppel_relation"),
        _message_fk("koppel_relation", "earlier_pk"),
        _message_fk("koppel_relation", "later_pk"),
        sa.UniqueConstraint(
            "earlier_pk", "later_pk", "relation", name="uq_koppel_relation_earlier_pk_later_pk_relation"
        ),
    )
    op.create_index("ix_koppel_relation_later_pk", "koppel_relation", ["later_pk"])
    op.create_table(
        "zorgaanbieder",
        sa.Column("agb", sa.String(8), nullable=False),
        sa.Column("naam", sa.String(NAME), nullable=False),
        sa.Column("bereikbaar", sa.Boolean, nullable=True),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("agb", name="pk_zorgaanbieder"),
    )

    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("gemeentecodes", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("gemeentecodes")
    op.drop_table("zorgaanbieder")
    op.drop_table("koppel_relation")
    op.drop_table("koppel_key")
    op.drop_table("koppel_message")
