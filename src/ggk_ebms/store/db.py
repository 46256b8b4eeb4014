"""The database handle: engine per backend, transactional sessions, migrations.

This is the adapter boundary for SQLAlchemy: ``session()`` turns every SQLAlchemy error into a
``StoreError`` (or ``StoreUnavailableError`` when the database cannot be reached, so the HTTP
layer answers 503 and the sender retries), and nothing above the store sees a SQLAlchemy
exception.

Durability first (architecture "Nothing is acknowledged before its transaction has committed"):
SQLite runs with ``synchronous=FULL`` in WAL mode, and every SQLite transaction starts with
``BEGIN IMMEDIATE`` so a transaction that reads and then writes (duplicate check, job claim)
cannot fail half-way on a lock upgrade; writers queue on ``busy_timeout`` instead.

Bounded waits on PostgreSQL (docs/storage.md, "Timeouts"): libpq's connect_timeout, the server's
statement_timeout and idle_in_transaction_session_timeout, TCP keepalives, and a client-side
deadline on every round trip (store/watchdog.py) including a short liveness check before each use
of a pooled connection, so that a database that goes silent yields 503 within seconds instead of
a hung request.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from ggk_ebms.config import Settings
from ggk_ebms.errors import ConfigError, StoreError, StoreUnavailableError
from ggk_ebms.inline import blocking_io
from ggk_ebms.store.revisions import database_revisions, script_heads
from ggk_ebms.store.watchdog import Watchdog

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

T = TypeVar("T")

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000


@dataclass(frozen=True)
class PgTimeouts:
    """PostgreSQL waits, in seconds (settings db_*; see config.py for what each one does)."""

    connect: int = 2
    ping: float = 2.0
    statement: float = 30.0
    idle_in_transaction: float = 60.0
    # TCP keepalives on idle pooled connections: first probe after 10 s, then every 5 s, 3 tries.
    keepalive_idle: int = 10
    keepalive_interval: int = 5
    keepalive_count: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> PgTimeouts:
        return cls(
            connect=settings.db_connect_timeout,
            ping=settings.db_ping_timeout,
            statement=settings.db_statement_timeout,
            idle_in_transaction=settings.db_idle_in_transaction_timeout,
        )


_WATCHDOG = Watchdog()
# Pooled PostgreSQL connections are also replaced after this age; a connection that died anyway
# is caught by the liveness check at checkout, or by ``run``'s one retry (docs/storage.md).
PG_POOL_RECYCLE_S: Final = 300

# SQLite reports a schema problem as OperationalError too; these are not outages.
_SQLITE_SCHEMA_HINTS: Final = ("no such table", "no such column", "has no column")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


SUPPORTED_BACKENDS: Final = ("sqlite", "postgresql")


def _create_engine(url: str, timeouts: PgTimeouts) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        # The job queue and the migrations are tested on these two only (SKIP LOCKED, WAL).
        raise ConfigError(
            f"database backend {parsed.get_backend_name()!r} is not supported; use sqlite or postgresql"
        )
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return _create_pg_engine(parsed, timeouts)


def _create_pg_engine(parsed: sa.URL, timeouts: PgTimeouts) -> Engine:
    server_options = (
        f"-c statement_timeout={int(timeouts.statement * 1000)} "
        f"-c idle_in_transaction_session_timeout={int(timeouts.idle_in_transaction * 1000)}"
    )
    url_options = parsed.query.get("options")
    if isinstance(url_options, str) and url_options:
        server_options = f"{url_options} {server_options}"
    connect_args: dict[str, Any] = {
        "connect_timeout": int(str(parsed.query.get("connect_timeout", timeouts.connect))),
        "options": server_options,
        "keepalives": 1,
        "keepalives_idle": timeouts.keepalive_idle,
        "keepalives_interval": timeouts.keepalive_interval,
        "keepalives_count": timeouts.keepalive_count,
        # Unacknowledged data for this long ends the connection (kernel-level, Linux).
        "tcp_user_timeout": int((timeouts.statement + 1) * 1000),
    }
    # Our own liveness check under a deadline instead of pool_pre_ping (which has none).
    engine = sa.create_engine(
        parsed, pool_pre_ping=False, pool_recycle=PG_POOL_RECYCLE_S, connect_args=connect_args
    )
    _guard_round_trips(engine, timeouts)
    return engine


def _fd(dbapi_connection: Any) -> int | None:
    try:
        return int(dbapi_connection.fileno())
    except Exception:  # a closed or broken connection has no descriptor
        return None


# Set around a checkout whose first statement stands in for the liveness check (run_statement).
_CHECKOUT = threading.local()
_FIRST_DEADLINE = "ggk_first_statement_deadline"


def in_autocommit(conn: sa.Connection) -> bool:
    """Whether a statement on ``conn`` is its own commit (``run_statement``)."""
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return True
    raw: Any = conn.connection.dbapi_connection
    return bool(getattr(raw, "autocommit", False))


def _on_its_own(engine: Engine, work: Callable[[sa.Connection], T], *, small: bool) -> T:
    """``work`` on a pooled connection in autocommit, for ``Database.run_statement``.

    On psycopg the switch is the connection's own attribute, set here and set back before the
    connection goes back to the pool: SQLAlchemy's ``execution_options(isolation_level=...)``
    does the same through its dialect and undoes it again at checkin, which cost more than the
    statement's own binding (docs/performance.md, round 10). ``execute_raw`` runs on it without a
    transaction of SQLAlchemy's. Other drivers take SQLAlchemy's way. Plain try blocks rather
    than context managers: this runs once per receive group (round 11).
    """
    _CHECKOUT.statement_is_ping = small
    try:
        plain = engine.connect()
    finally:
        _CHECKOUT.statement_is_ping = False
    try:
        if plain.dialect.driver != "psycopg":
            return work(plain.execution_options(isolation_level="AUTOCOMMIT"))
        raw: Any = plain.connection.dbapi_connection
        raw.autocommit = True
        try:
            return work(plain)
        finally:
            if not raw.closed:  # an invalidated connection is closed and goes nowhere
                raw.autocommit = False
    except exc.DBAPIError as error:
        if error.connection_invalidated:
            # The statement found the pooled connection dead (no ping went first): end the
            # invalidated transaction so that closing does not raise over the real error.
            with contextlib.suppress(exc.SQLAlchemyError):
                plain.rollback()
        raise
    finally:
        plain.close()


def _guard_round_trips(engine: Engine, timeouts: PgTimeouts) -> None:
    """Arm the watchdog around every round trip of this engine's connections."""
    statement_deadline = timeouts.statement + 1.0  # the server's own cancel comes first

    def arm(record_info: dict[str, Any], dbapi_connection: Any, seconds: float) -> None:
        disarm(record_info)
        fd = _fd(dbapi_connection)
        if fd is not None:
            record_info["watchdog"] = _WATCHDOG.arm(fd, seconds)

    def disarm(record_info: dict[str, Any]) -> None:
        token = record_info.pop("watchdog", None)
        if token is not None:
            _WATCHDOG.disarm(token)

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if getattr(_CHECKOUT, "statement_is_ping", False):
            record.info[_FIRST_DEADLINE] = timeouts.ping  # see Database.run_statement
            return
        arm(record.info, dbapi_connection, timeouts.ping)
        try:
            # In autocommit the check is ONE round trip; in a transaction psycopg would send
            # BEGIN, SELECT 1 and ROLLBACK, each waited for (docs/performance.md, "Round 3").
            # The pool hands out idle connections (reset on return), so the switch is free.
            dbapi_connection.autocommit = True
            try:
                with dbapi_connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
            finally:
                dbapi_connection.autocommit = False
        except Exception as error:
            # SQLAlchemy drops this connection and tries a new one (connect_timeout bounds it).
            raise exc.DisconnectionError(f"liveness check failed: {type(error).__name__}") from None
        finally:
            disarm(record.info)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: sa.Connection, *_args: Any) -> None:
        deadline = conn.info.pop(_FIRST_DEADLINE, statement_deadline)
        arm(conn.info, conn.connection.dbapi_connection, deadline)

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: sa.Connection, *_args: Any) -> None:
        disarm(conn.info)

    @event.listens_for(engine, "commit")
    def _commit(conn: sa.Connection) -> None:
        arm(conn.info, conn.connection.dbapi_connection, statement_deadline)

    @event.listens_for(engine, "rollback")
    def _rollback(conn: sa.Connection) -> None:
        arm(conn.info, conn.connection.dbapi_connection, statement_deadline)

    @event.listens_for(engine, "handle_error")
    def _error(context: Any) -> None:
        if context.connection is not None:
            disarm(context.connection.info)

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info.pop(_FIRST_DEADLINE, None)
        disarm(record.info)


def _describe(error: exc.SQLAlchemyError) -> str:
    """A short cause without the SQL statement or its parameters (they may hold personal data)."""
    orig = getattr(error, "orig", None)
    source = orig if orig is not None else error
    first_line = str(source).strip().splitlines()[0] if str(source).strip() else ""
    return f"{type(source).__name__}: {first_line}" if first_line else type(source).__name__


def translate(error: exc.SQLAlchemyError, backend: str) -> StoreError:
    """Map a SQLAlchemy error to the store's own exception (adapter boundary)."""
    text = _describe(error)
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return StoreUnavailableError(f"database connection lost: {text}")
    if isinstance(error, exc.InterfaceError | exc.TimeoutError):
        return StoreUnavailableError(f"database unreachable: {text}")
    if isinstance(error, exc.OperationalError):
        if backend == "sqlite" and any(hint in text for hint in _SQLITE_SCHEMA_HINTS):
            return StoreError(f"database schema is not as expected ({text}); run `ggk-ebms db upgrade`")
        return StoreUnavailableError(f"database unavailable: {text}")
    if isinstance(error, exc.ProgrammingError) and "does not exist" in text:
        return StoreError(f"database schema is not as expected ({text}); run `ggk-ebms db upgrade`")
    return StoreError(f"database error: {text}")


class Database:
    """One database: an engine, sessions with commit/rollback, and its migrations."""

    def __init__(self, url: str, timeouts: PgTimeouts | None = None) -> None:
        self.url = url
        try:
            self.engine = _create_engine(url, timeouts or PgTimeouts())
        except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
            # Never echo the URL itself: it may carry a password.
            raise ConfigError(f"database_url is not a usable SQLAlchemy URL: {error}") from None
        self.backend = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The configured database; creates the folder of a SQLite file (data_dir by default)."""
        url = settings.effective_database_url
        try:
            parsed = make_url(url)
        except exc.ArgumentError as error:
            raise ConfigError(f"database_url is not a usable SQLAlchemy URL: {error}") from None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreUnavailableError(f"cannot create the database folder: {error}") from None
        return cls(url, PgTimeouts.from_settings(settings))

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for logs and CLI output."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def sqlite_file(self) -> Path | None:
        """The database file of a SQLite URL (None for other backends and in-memory databases).

        Lets read-only commands say "no database yet" instead of creating an empty file.
        """
        parsed = make_url(self.url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return Path(parsed.database)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back when it raises.

        SQLAlchemy errors come out as ``StoreError``/``StoreUnavailableError``; errors of the
        caller's own pass through unchanged (after the rollback).
        """
        blocking_io("a database session")
        try:
            with self._sessions() as session, session.begin():
                yield session
        except exc.SQLAlchemyError as error:
            raise translate(error, self.backend) from error

    def run(self, work: Callable[[Session], T]) -> T:
        """``work`` in one transaction, tried once more on a fresh connection if the pooled one
        turned out to be dead (server restart, idle timeout, failover).

        Without a pre-ping per checkout a dead pooled connection shows itself on the first
        statement; SQLAlchemy then invalidates it (and the rest of the pool), so the second try
        connects anew. ``work`` must be safe to repeat: everything it did in the failed try was
        rolled back, or, if the connection died during COMMIT, was committed and is found again
        (a receive then meets its own row under the UNIQUE MessageId and is answered as the
        duplicate it is, from what was stored: ack-after-commit still holds).
        """
        blocking_io("a database transaction")
        try:
            with self._sessions() as session, session.begin():
                return work(session)
        except exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise translate(error, self.backend) from error
            log.warning("database connection was dead, trying once more: %s", _describe(error))
        except exc.SQLAlchemyError as error:
            raise translate(error, self.backend) from error
        with self.session() as session:
            return work(session)

    def run_statement(self, work: Callable[[sa.Connection], T], *, small: bool = False) -> T:
        """``work`` that is ONE statement, run on its own (autocommit), with ``run``'s retry.

        A single statement is atomic and, with autocommit, durable when it returns: this saves
        the separate BEGIN and COMMIT round trips of a transaction (docs/performance.md). Only
        for work that executes exactly one statement; anything more needs ``run``.

        ``small``: the statement carries little data (the caller knows), so on PostgreSQL it is
        itself the liveness check: no ``SELECT 1`` at checkout, and the statement gets the ping's
        deadline (``db_ping_timeout``) instead of the statement deadline. A silent database is
        still noticed as quickly (docs/security.md "Limits"), a dead pooled connection still gets
        the one retry on a fresh one, and the hot path saves a round trip per group.
        """
        blocking_io("a database statement")
        for attempt in (1, 2):
            try:
                return _on_its_own(self.engine, work, small=small)
            except exc.DBAPIError as error:
                if attempt == 2 or not error.connection_invalidated:
                    raise translate(error, self.backend) from error
                log.warning("database connection was dead, trying once more: %s", _describe(error))
            except exc.SQLAlchemyError as error:
                raise translate(error, self.backend) from error
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def connection(self) -> Iterator[sa.Connection]:
        """A plain connection in a transaction, for schema inspection and migrations."""
        blocking_io("a database connection")
        try:
            with self.engine.begin() as conn:
                yield conn
        except exc.SQLAlchemyError as error:
            raise translate(error, self.backend) from error

    def _alembic_config(self, conn: sa.Connection | None = None) -> Config:
        # alembic is imported only when a migration may run: a database already at head is
        # recognised without it (store/revisions.py), which keeps short CLI calls quick.
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        # env.py uses this connection, so no alembic.ini or URL is needed in the cwd.
        cfg.attributes["connection"] = conn
        return cfg

    def known_revisions(self) -> set[str]:
        """Every revision this version of the software ships."""
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._alembic_config())
        return {rev.revision for rev in script.walk_revisions()}

    def check_not_newer(self) -> None:
        """Refuse a database migrated by a newer version of the software.

        Running older code on a newer schema could write rows the newer version does not expect
        (and alembic cannot downgrade to a revision it does not know); the operator must install
        the newer version again or restore a backup made before the upgrade.
        """
        if self._at_head():
            return  # the common case, answered without importing alembic
        revision = self.current_revision()
        if revision is not None and revision not in self.known_revisions():
            raise StoreError(
                f"database {self.display_url} is at revision {revision}, which this version of "
                f"ggk-ebms (latest revision {self.head_revision()}) does not know: it was upgraded "
                "by a newer version; run that version, or restore a backup made before the upgrade"
            )

    def upgrade_sql(self) -> str:
        """The SQL that ``upgrade`` would run from the current revision to head, not executed.

        Alembic's offline mode (for a DBA who applies schema changes himself); the starting point is
        read from the database when it can be reached, else the whole schema is printed.
        """
        import io

        from alembic import command
        from alembic.config import Config

        buffer = io.StringIO()
        cfg = Config(output_buffer=buffer)
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["url"] = self.url
        start: str | None = None
        sqlite_file = self.sqlite_file
        if sqlite_file is None or sqlite_file.exists():
            self.check_not_newer()
            start = self.current_revision()
        head = self.head_revision()
        if start == head:
            return ""
        command.upgrade(cfg, f"{start}:head" if start else "head", sql=True)
        return buffer.getvalue()

    def _at_head(self) -> bool:
        """True when the database records exactly the scripts' head revision(s)."""
        heads = script_heads(MIGRATIONS_DIR / "versions")
        with self.connection() as conn:
            return database_revisions(conn) == heads

    def upgrade(self) -> None:
        """Apply every migration up to head (idempotent); refuses a database newer than us."""
        if self._at_head():
            return
        self.check_not_newer()
        from alembic import command

        with self.connection() as conn:
            command.upgrade(self._alembic_config(conn), "head")
        log.info("database %s at revision %s", self.display_url, self.head_revision())

    def current_revision(self) -> str | None:
        """The revision the database is at; None for a database never migrated."""
        from alembic.runtime.migration import MigrationContext

        with self.connection() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest revision this version of the software knows."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def is_current(self) -> bool:
        """True when the database is at the newest migration."""
        return self._at_head() or self.current_revision() == self.head_revision()

    def ping(self) -> None:
        """Raise StoreUnavailableError unless a trivial query succeeds."""
        with self.connection() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        """Close every pooled connection (end of process, or between tests)."""
        self.engine.dispose()
