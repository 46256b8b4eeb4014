"""Console accounts, their server-side sessions and the wrong-password counter per account name."""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from ggk_ebms.errors import StoreError
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import console_login_throttle, console_session, console_user


@dataclass(frozen=True)
class ConsoleUser:
    pk: int
    username: str
    display_name: str
    password_hash: str | None
    role: str
    products: frozenset[str]
    personal_data: bool  # may see BSN and names in payloads
    created_at: datetime
    disabled_at: datetime | None
    # The gemeentecodes the account may act for; None: every gemeente of the installation.
    gemeentecodes: frozenset[str] | None = None


@dataclass(frozen=True)
class ConsoleSession:
    user: ConsoleUser
    csrf: str
    created_at: datetime
    seen_at: datetime


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def _user(row: sa.Row[Any]) -> ConsoleUser:
    return ConsoleUser(
        pk=row.pk,
        username=row.username,
        display_name=row.display_name,
        password_hash=row.password_hash,
        role=row.role,
        products=frozenset(row.products),
        personal_data=bool(row.personal_data),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        gemeentecodes=None if row.gemeentecodes is None else frozenset(row.gemeentecodes),
    )


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        *,
        username: str,
        display_name: str,
        password_hash: str | None,
        role: str,
        products: Iterable[str],
        personal_data: bool,
        at: datetime,
        gemeentecodes: Iterable[str] | None = None,
    ) -> ConsoleUser:
        try:
            with self.db.session() as session:
                session.execute(
                    sa.insert(console_user).values(
                        username=username,
                        display_name=display_name,
                        password_hash=password_hash,
                        role=role,
                        products=sorted(set(products)),
                        personal_data=personal_data,
                        created_at=at,
                        gemeentecodes=None if gemeentecodes is None else sorted(set(gemeentecodes)),
                    )
                )
        except StoreError as error:
            if isinstance(error.__cause__, exc.IntegrityError):
                raise StoreError(f"er is al een account {username!r}") from None
            raise
        found = self.by_username(username)
        assert found is not None
        return found

    def by_username(self, username: str) -> ConsoleUser | None:
        with self.db.session() as session:
            row = session.execute(sa.select(console_user).where(console_user.c.username == username)).first()
        return None if row is None else _user(row)

    def by_pk(self, pk: int) -> ConsoleUser | None:
        with self.db.session() as session:
            row = session.execute(sa.select(console_user).where(console_user.c.pk == pk)).first()
        return None if row is None else _user(row)

    def list(self) -> builtins.list[ConsoleUser]:
        with self.db.session() as session:
            rows = session.execute(sa.select(console_user).order_by(console_user.c.username)).all()
        return [_user(r) for r in rows]

    def count(self) -> int:
        with self.db.session() as session:
            return int(session.execute(sa.select(sa.func.count()).select_from(console_user)).scalar_one())

    def update(self, pk: int, **values: Any) -> ConsoleUser:
        if "products" in values:
            values["products"] = sorted(set(values["products"]))
        if values.get("gemeentecodes") is not None:
            values["gemeentecodes"] = sorted(set(values["gemeentecodes"]))
        with self.db.session() as session:
            session.execute(sa.update(console_user).where(console_user.c.pk == pk).values(**values))
            if "disabled_at" in values and values["disabled_at"] is not None:
                session.execute(sa.delete(console_session).where(console_session.c.user_pk == pk))
        found = self.by_pk(pk)
        if found is None:
            raise StoreError(f"geen account {pk}")
        return found


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, session_id: str, user_pk: int, csrf: str, at: datetime) -> None:
        with self.db.session() as session:
            session.execute(
                sa.insert(console_session).values(
                    id_hash=session_hash(session_id), user_pk=user_pk, csrf=csrf, created_at=at, seen_at=at
                )
            )

    def find(self, session_id: str) -> ConsoleSession | None:
        with self.db.session() as session:
            row = session.execute(
                sa.select(console_session, console_user)
                .join(console_user, console_user.c.pk == console_session.c.user_pk)
                .where(console_session.c.id_hash == session_hash(session_id))
            ).first()
        if row is None:
            return None
        return ConsoleSession(_user(row), row.csrf, row.created_at, row.seen_at)

    def touch(self, session_id: str, at: datetime) -> None:
        with self.db.session() as session:
            session.execute(
                sa.update(console_session)
                .where(console_session.c.id_hash == session_hash(session_id))
                .values(seen_at=at)
            )

    def delete(self, session_id: str) -> None:
        with self.db.session() as session:
            session.execute(
                sa.delete(console_session).where(console_session.c.id_hash == session_hash(session_id))
            )

    def purge(self, seen_before: datetime, created_before: datetime) -> int:
        with self.db.session() as session:
            result = session.execute(
                sa.delete(console_session).where(
                    sa.or_(
                        console_session.c.seen_at < seen_before, console_session.c.created_at < created_before
                    )
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)


class LoginThrottle:
    """Wrong passwords in a row per account name; ``locked_until`` set once the limit is reached."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def locked_until(self, username: str) -> datetime | None:
        with self.db.session() as session:
            row = session.execute(
                sa.select(console_login_throttle.c.locked_until).where(
                    console_login_throttle.c.username == username
                )
            ).first()
        return None if row is None else row.locked_until

    def failed(self, username: str, *, limit: int, lock_until: datetime) -> int:
        """Count one wrong password; lock the name when ``limit`` is reached. Returns the count."""
        with self.db.session() as session:
            row = session.execute(
                sa.select(console_login_throttle.c.failures).where(
                    console_login_throttle.c.username == username
                )
            ).first()
            failures = (row.failures if row is not None else 0) + 1
            locked = lock_until if failures >= limit else None
            if row is None:
                session.execute(
                    sa.insert(console_login_throttle).values(
                        username=username, failures=failures, locked_until=locked
                    )
                )
            else:
                session.execute(
                    sa.update(console_login_throttle)
                    .where(console_login_throttle.c.username == username)
                    .values(failures=failures, locked_until=locked)
                )
        return failures

    def reset(self, username: str) -> None:
        with self.db.session() as session:
            session.execute(
                sa.delete(console_login_throttle).where(console_login_throttle.c.username == username)
            )
