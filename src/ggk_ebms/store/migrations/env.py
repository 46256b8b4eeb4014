"""Alembic environment: migrations run on the connection ``Database.upgrade`` hands over.

Run programmatically only (``ggk-ebms db upgrade [--sql]`` or ``Database.upgrade``); no alembic.ini and no
URL in the working directory are needed. The metadata is given so ``alembic check`` and the
schema test can compare it with the migrated database.
"""

from __future__ import annotations

from alembic import context

from ggk_ebms.store.tables import metadata

if context.is_offline_mode():
    # `ggk-ebms db upgrade --sql`: print the SQL for a DBA instead of running it (alembic's
    # offline mode). The dialect comes from the configured database URL; nothing connects.
    context.configure(
        url=context.config.attributes["url"],
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=context.config.attributes["url"].startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through ggk_ebms.store.db.Database.upgrade (no connection given)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table in later migrations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
