"""Initial schema: CPAs, messages with their parts, jobs and delivery attempts.

Written by hand to match ggk_ebms/store/tables.py at this revision; a test compares the migrated
database with the metadata. Values are spelled out here on purpose: a migration records the
schema as it was, so it must not follow later edits of tables.py.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = 1024  # tables.MESSAGE_ID_MAX at this revision
NAME = 255


def _pk() -> sa.Column[int]:
    return sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "cpa",
        sa.Column("cpa_id", sa.String(255), nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        _when("start_at"),
        _when("end_at"),
        sa.Column("party_ids", sa.JSON, nullable=False),
        sa.Column("profiles", sa.JSON, nullable=False),
        _when("imported_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("cpa_id", name="pk_cpa"),
    )
    op.create_table(
        "message",
        _pk(),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("message_id", sa.String(ID), nullable=False),
        sa.Column("cpa_id", sa.String(255), nullable=False),
        sa.Column("conversation_id", sa.String(ID), nullable=False),
        sa.Column("ref_to_message_id", sa.String(ID), nullable=True),
        sa.Column("from_party_id", sa.String(NAME), nullable=False),
        sa.Column("from_party_type", sa.String(NAME), nullable=True),
        sa.Column("from_role", sa.String(NAME), nullable=True),
        sa.Column("to_party_id", sa.String(NAME), nullable=False),
        sa.Column("to_party_type", sa.String(NAME), nullable=True),
        sa.Column("to_role", sa.String(NAME), nullable=True),
        sa.Column("service", sa.String(NAME), nullable=False),
        sa.Column("service_type", sa.String(NAME), nullable=True),
        sa.Column("action", sa.String(NAME), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        _when("timestamp"),
        _when("time_to_live", nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("content_digest", sa.String(64), nullable=True),
        sa.Column("envelope", sa.LargeBinary, nullable=True),
        sa.Column("content_type", sa.String(1024), nullable=True),
        sa.Column("sync_reply", sa.Boolean, nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_message"),
        sa.UniqueConstraint("direction", "message_id", name="uq_message_direction_message_id"),
        sa.CheckConstraint(_in("direction", ("in", "out")), name="ck_message_direction"),
        sa.CheckConstraint(
            _in(
                "kind",
                (
                    "business",
                    "Acknowledgment",
                    "MessageError",
                    "Ping",
                    "Pong",
                    "StatusRequest",
                    "StatusResponse",
                ),
            ),
            name="ck_message_kind",
        ),
        sa.CheckConstraint(
            _in(
                "status",
                (
                    "Received",
                    "Processed",
                    "Forwarded",
                    "Failed",
                    "Created",
                    "Sending",
                    "Delivered",
                    "DeliveryFailed",
                    "Expired",
                    "Sent",
                ),
            ),
            name="ck_message_status",
        ),
    )
    op.create_index("ix_message_direction_status", "message", ["direction", "status"])
    op.create_index("ix_message_ref_to_message_id", "message", ["ref_to_message_id"])
    op.create_index("ix_message_cpa_id", "message", ["cpa_id"])
    op.create_index("ix_message_conversation_id", "message", ["conversation_id"])

    op.create_table(
        "message_part",
        _pk(),
        sa.Column("message_pk", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("content_id", sa.String(ID), nullable=False),
        sa.Column("content_type", sa.String(1024), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_message_part"),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["message.pk"], name="fk_message_part_message_pk_message", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("message_pk", "seq", name="uq_message_part_message_pk_seq"),
    )

    op.create_table(
        "job",
        _pk(),
        sa.Column("queue", sa.String(16), nullable=False),
        sa.Column("message_pk", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _when("due_at"),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("claimed_by", sa.String(NAME), nullable=True),
        _when("claimed_at", nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_job"),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["message.pk"], name="fk_job_message_pk_message", ondelete="CASCADE"
        ),
        sa.CheckConstraint(_in("queue", ("deliver", "send")), name="ck_job_queue"),
        sa.CheckConstraint(_in("status", ("pending", "running", "done", "failed")), name="ck_job_status"),
    )
    op.create_index("ix_job_queue_status_due_at", "job", ["queue", "status", "due_at"])
    op.create_index("ix_job_message_pk", "job", ["message_pk"])

    op.create_table(
        "attempt",
        _pk(),
        sa.Column("message_pk", sa.BigInteger, nullable=False),
        sa.Column("job_pk", sa.BigInteger, nullable=True),
        _when("started_at"),
        _when("finished_at"),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_attempt"),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["message.pk"], name="fk_attempt_message_pk_message", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["job_pk"], ["job.pk"], name="fk_attempt_job_pk_job", ondelete="SET NULL"),
        sa.CheckConstraint(_in("outcome", ("ok", "retry", "fail")), name="ck_attempt_outcome"),
    )
    op.create_index("ix_attempt_message_pk", "attempt", ["message_pk"])


def downgrade() -> None:
    op.drop_table("attempt")
    op.drop_table("job")
    op.drop_table("message_part")
    op.drop_table("message")
    op.drop_table("cpa")
