"""The portal's daily work: aanlever batches and files, the audit trail, the CPA request fields and
activation, mailbox removal, and the berichtenlog indexes.

Written by hand to match ggk_ebms/store/tables.py at this revision (the metadata/migration test
compares them); values spelled out so later edits of tables.py do not rewrite history.

Revision ID: 0005
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME = 255
REF = 64
ORG = 200


def _pk() -> sa.Column[int]:
    return sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "aanlever_batch",
        _pk(),
        sa.Column("bestandsnaam", sa.String(NAME), nullable=False),
        sa.Column("verzender", sa.String(NAME), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("aangeleverd", sa.Integer, nullable=False),
        sa.Column("correct", sa.Integer, nullable=False),
        sa.Column("incorrect", sa.Integer, nullable=False),
        _when("ingeleverd_op"),
        _when("begin_verwerking", nullable=True),
        _when("verwacht_einde", nullable=True),
        _when("einde_verwerking", nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_aanlever_batch"),
        sa.CheckConstraint(
            "status IN ('Ontvangen', 'Bezig', 'Afgeleverd', 'Afgekeurd')", name="ck_aanlever_batch_status"
        ),
    )
    op.create_index("ix_aanlever_batch_ingeleverd_op", "aanlever_batch", ["ingeleverd_op"])

    op.create_table(
        "aanlever_file",
        _pk(),
        sa.Column("batch_pk", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("bestand", sa.String(NAME), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("foutomschrijving", sa.String(255), nullable=True),
        sa.Column("fout_detail", sa.String(2000), nullable=True),
        sa.Column("berichttype", sa.String(32), nullable=True),
        sa.Column("gemeentecode", sa.String(ORG), nullable=True),
        sa.Column("referentienummer", sa.String(REF), nullable=True),
        sa.Column("payload_sha256", sa.String(64), nullable=True),
        sa.Column("message_pk", sa.BigInteger, nullable=True),
        _when("created_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_aanlever_file"),
        sa.ForeignKeyConstraint(
            ["batch_pk"],
            ["aanlever_batch.pk"],
            name="fk_aanlever_file_batch_pk_aanlever_batch",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["message.pk"], name="fk_aanlever_file_message_pk_message", ondelete="SET NULL"
        ),
        sa.UniqueConstraint("batch_pk", "seq", name="uq_aanlever_file_batch_pk_seq"),
        sa.CheckConstraint(
            "outcome IN ('correct', 'al verzonden', 'incorrect')", name="ck_aanlever_file_outcome"
        ),
    )
    op.create_index("ix_aanlever_file_message_pk", "aanlever_file", ["message_pk"])
    op.create_index("ix_aanlever_file_created_at", "aanlever_file", ["created_at"])

    op.create_table(
        "audit_event",
        _pk(),
        _when("at"),
        sa.Column("actor", sa.String(NAME), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(NAME), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_audit_event"),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index("ix_audit_event_action_at", "audit_event", ["action", "at"])

    op.create_table(
        "cpa_portal",
        sa.Column("cpa_id", sa.String(NAME), nullable=False),
        sa.Column("profielnaam", sa.String(NAME), nullable=True),
        sa.Column("oin_of_hrn", sa.String(64), nullable=True),
        _when("ingangsdatum", nullable=True),
        _when("einddatum", nullable=True),
        sa.Column("connectietype", sa.String(16), nullable=True),
        sa.Column("endpoint", sa.String(1024), nullable=True),
        sa.Column("server_certificaat", sa.Text, nullable=True),
        sa.Column("client_certificaat", sa.Text, nullable=True),
        _when("geactiveerd_op", nullable=True),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("cpa_id", name="pk_cpa_portal"),
        sa.ForeignKeyConstraint(
            ["cpa_id"], ["cpa.cpa_id"], name="fk_cpa_portal_cpa_id_cpa", ondelete="CASCADE"
        ),
        sa.CheckConstraint(
            "connectietype IN ('Diginetwerk', 'Internet')", name="ck_cpa_portal_connectietype"
        ),
    )

    with op.batch_alter_table("mailbox_item") as batch:
        batch.add_column(_when("removed_at", nullable=True))
        batch.add_column(sa.Column("removed_reason", sa.String(64), nullable=True))
    op.create_index("ix_mailbox_item_created_at", "mailbox_item", ["created_at"])
    op.create_index("ix_message_created_at", "message", ["created_at"])
    op.create_index("ix_stuf_message_gemeentecode", "stuf_message", ["gemeentecode"])
    op.create_index("ix_stuf_message_payload_sha256", "stuf_message", ["payload_sha256"])


def downgrade() -> None:
    op.drop_index("ix_stuf_message_payload_sha256", "stuf_message")
    op.drop_index("ix_stuf_message_gemeentecode", "stuf_message")
    op.drop_index("ix_message_created_at", "message")
    op.drop_index("ix_mailbox_item_created_at", "mailbox_item")
    with op.batch_alter_table("mailbox_item") as batch:
        batch.drop_column("removed_reason")
        batch.drop_column("removed_at")
    op.drop_table("cpa_portal")
    op.drop_table("audit_event")
    op.drop_table("aanlever_file")
    op.drop_table("aanlever_batch")
