"""Management API: hashed API tokens, URL and certificate mappings, API marks, worker heartbeats.

Written by hand to match ggk_ebms/store/tables.py at this revision (the metadata/migration test
compares them). Values are spelled out, not imported, so later edits of tables.py do not rewrite
history.

Revision ID: 0006
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0007"
branch_labels = None
depends_on = None

NAME = 255
CPA_ID = 255
URL = 1024


def _pk() -> sa.Column[int]:
    return sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_token",
        _pk(),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        _when("created_at"),
        _when("expires_at", nullable=True),
        _when("revoked_at", nullable=True),
        _when("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_api_token"),
        sa.UniqueConstraint("name", name="uq_api_token_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_token_token_hash"),
    )
    op.create_table(
        "url_mapping",
        sa.Column("source", sa.String(URL), nullable=False),
        sa.Column("destination", sa.String(URL), nullable=False),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("source", name="pk_url_mapping"),
    )
    op.create_table(
        "certificate_mapping",
        _pk(),
        sa.Column("cpa_id", sa.String(CPA_ID), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.LargeBinary, nullable=False),
        sa.Column("destination", sa.LargeBinary, nullable=False),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_certificate_mapping"),
        sa.UniqueConstraint("source_sha256", "cpa_id", name="uq_certificate_mapping_source_sha256_cpa_id"),
    )
    op.create_table(
        "api_mark",
        _pk(),
        sa.Column("message_pk", sa.BigInteger, nullable=False),
        sa.Column("what", sa.String(16), nullable=False),
        _when("marked_at"),
        sa.PrimaryKeyConstraint("pk", name="pk_api_mark"),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["message.pk"], name="fk_api_mark_message_pk_message", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("message_pk", "what", name="uq_api_mark_message_pk_what"),
        sa.CheckConstraint("what IN ('message', 'event')", name="ck_api_mark_what"),
    )
    op.create_table(
        "worker_heartbeat",
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        _when("beat_at"),
        sa.PrimaryKeyConstraint("name", name="pk_worker_heartbeat"),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeat")
    op.drop_table("api_mark")
    op.drop_table("certificate_mapping")
    op.drop_table("url_mapping")
    op.drop_table("api_token")
