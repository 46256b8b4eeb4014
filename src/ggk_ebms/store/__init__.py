"""Persistence adapter: SQLAlchemy 2 on SQLite or PostgreSQL, migrations by alembic.

``db`` (Database: engine, sessions, migrations), ``tables`` (the schema), ``cpas``
(CpaRepository), ``messages`` (MessageStore), ``jobs`` (JobQueue). See docs/storage.md.
"""
