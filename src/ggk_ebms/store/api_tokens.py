"""API tokens of the management API: created once (the secret is shown once), kept hashed.

A token is ``ggk_`` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 is
stored: with that much entropy there is no dictionary to run a fast hash against, so a slow
password hash would only cost every request CPU time (docs/api.md, "Tokens").
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import exc

from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.errors import StoreError
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import NAME_MAX, TOKEN_SCOPES, api_token

TOKEN_PREFIX: Final = "ggk_"  # noqa: S105 - a marker, not a secret
_SHOWN_PREFIX: Final = 12  # "ggk_" + 8 characters: enough to tell tokens apart in a listing


@dataclass(frozen=True)
class ApiToken:
    pk: int
    name: str
    prefix: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    gemeentecodes: frozenset[str] | None = None  # None: may act for every gemeente

    def may_act_for(self, gemeentecode: str | None) -> bool:
        return self.gemeentecodes is None or (gemeentecode is not None and gemeentecode in self.gemeentecodes)

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(scopes)
    unknown = chosen - set(TOKEN_SCOPES)
    if unknown or not chosen:
        raise ValueError(
            f"scopes must be one or more of {', '.join(TOKEN_SCOPES)}; "
            f"got {', '.join(sorted(chosen)) or 'none'}"
        )
    return chosen


def _row(row: sa.Row[Any]) -> ApiToken:
    return ApiToken(
        pk=row.pk,
        name=row.name,
        prefix=row.prefix,
        scopes=frozenset(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        gemeentecodes=None if row.gemeentecodes is None else frozenset(row.gemeentecodes),
    )


class TokenStore:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def create(
        self,
        name: str,
        scopes: Iterable[str],
        *,
        expires_at: datetime | None = None,
        gemeentecodes: Iterable[str] | None = None,
    ) -> tuple[ApiToken, str]:
        """A new token called ``name``; returns it and the secret (never stored, shown once)."""
        if not name or len(name) > NAME_MAX or not name.isprintable():
            raise ValueError(f"a token name is 1 to {NAME_MAX} printable characters")
        chosen = check_scopes(scopes)
        codes = None if gemeentecodes is None else sorted(set(gemeentecodes))
        if codes is not None and (not codes or not all(len(c) == 4 and c.isdigit() for c in codes)):
            raise ValueError("gemeentecodes are one or more codes of 4 digits")
        secret = new_token()
        now = self.clock.now()
        try:
            with self.db.session() as session:
                session.execute(
                    sa.insert(api_token).values(
                        name=name,
                        token_hash=hash_token(secret),
                        prefix=secret[:_SHOWN_PREFIX],
                        scopes=sorted(chosen),
                        gemeentecodes=codes,
                        created_at=now,
                        expires_at=expires_at,
                    )
                )
        except StoreError as error:  # Database.session translates the IntegrityError
            if isinstance(error.__cause__, exc.IntegrityError):
                raise StoreError(f"a token called {name!r} exists already") from None
            raise
        token = self.find_by_name(name)
        assert token is not None
        return token, secret

    def find_by_name(self, name: str) -> ApiToken | None:
        with self.db.session() as session:
            row = session.execute(sa.select(api_token).where(api_token.c.name == name)).first()
        return None if row is None else _row(row)

    def authenticate(self, secret: str) -> ApiToken | None:
        """The token whose secret this is, usable or not (the caller decides); None when unknown."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
            return None
        with self.db.session() as session:
            row = session.execute(
                sa.select(api_token).where(api_token.c.token_hash == hash_token(secret))
            ).first()
        return None if row is None else _row(row)

    def touch(self, pk: int) -> None:
        with self.db.session() as session:
            session.execute(
                sa.update(api_token).where(api_token.c.pk == pk).values(last_used_at=self.clock.now())
            )

    def list(self) -> builtins.list[ApiToken]:
        with self.db.session() as session:
            rows = session.execute(sa.select(api_token).order_by(api_token.c.name)).all()
        return [_row(row) for row in rows]

    def revoke(self, name: str) -> ApiToken:
        now = self.clock.now()
        with self.db.session() as session:
            result = session.execute(
                sa.update(api_token)
                .where(api_token.c.name == name, api_token.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            changed: int = result.rowcount  # type: ignore[attr-defined]
        token = self.find_by_name(name)
        if token is None:
            raise StoreError(f"no token called {name!r}")
        if not changed:
            raise StoreError(f"token {name!r} was revoked already")
        return token
