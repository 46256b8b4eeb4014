"""Console accounts: the gemeentecodes an account may act for (NULL: every gemeente).

Written by hand to match ggk_ebms/store/tables.py at this revision (the metadata/migration test
compares them).

Revision ID: 0016
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, so existing accounts keep acting for every gemeente, as before this revision.
    with op.batch_alter_table("console_user") as batch:
        batch.add_column(sa.Column("gemeentecodes", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("console_user") as batch:
        batch.drop_column("gemeentecodes")
