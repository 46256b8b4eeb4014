"""Gebruikers: console accounts, login with throttling, server-side sessions (docs/console.md).

Passwords are argon2id hashes; a session is a random 256-bit id whose SHA-256 is stored, with a
CSRF token of its own; it ends after ``console_session_minutes`` idle or 12 hours in all. After
``console_max_failed_logins`` wrong passwords in a row an account name is locked for
``console_lockout_minutes`` (OWASP ASVS 2.2.1), also when the name does not exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from types import EllipsisType
from typing import Final

from ggk_ebms.console.passwords import check_new_password, hash_password, verify_password
from ggk_ebms.console.rights import PRODUCTS, ROLES
from ggk_ebms.services import audit
from ggk_ebms.services.context import NotFoundError, ServiceContext, ServiceError
from ggk_ebms.store.console_users import ConsoleSession, ConsoleUser, LoginThrottle, SessionStore, UserStore
from ggk_ebms.store.tables import USERNAME_MAX

__all__ = [
    "ConsoleSession",
    "ConsoleUser",
    "LoginRefused",
    "LoginResult",
    "create_user",
    "current_session",
    "list_users",
    "login",
    "login_external",
    "logout",
    "update_user",
]

MAX_SESSION: Final = timedelta(hours=12)


class LoginRefused(ServiceError):
    """Wrong name or password, or the name is locked; the text never says which name exists."""


@dataclass(frozen=True)
class LoginResult:
    session_id: str  # for the cookie; only its hash is stored
    user: ConsoleUser


def _check(username: str, role: str, products: Iterable[str]) -> None:
    if not username or len(username) > USERNAME_MAX or not username.isprintable() or " " in username:
        raise ServiceError(f"een gebruikersnaam is 1 tot {USERNAME_MAX} tekens zonder spaties")
    if role not in ROLES:
        raise ServiceError(f"rol is een van: {', '.join(ROLES)}")
    unknown = set(products) - set(PRODUCTS)
    if unknown:
        raise ServiceError(f"onbekend product: {', '.join(sorted(unknown))}")


def gemeentecodes_of(codes: Iterable[str] | None) -> frozenset[str] | None:
    """The gemeentecodes an account may act for, checked: four digits each (the CBS gemeentecode
    as StUF-GGk carries it in the stuurgegevens). None or nothing given: every gemeente."""
    if codes is None:
        return None
    chosen = frozenset(c.strip() for c in codes if c.strip())
    wrong = sorted(c for c in chosen if len(c) != 4 or not c.isdigit() or not c.isascii())
    if wrong:
        raise ServiceError(f"een gemeentecode is vier cijfers, niet: {', '.join(wrong)[:200]}")
    return chosen or None


def _codes_text(codes: frozenset[str] | None) -> str:
    return "alle" if codes is None else ",".join(sorted(codes))


def create_user(
    ctx: ServiceContext,
    *,
    username: str,
    display_name: str,
    password: str | None,
    role: str,
    products: Iterable[str],
    personal_data: bool = False,
    gemeentecodes: Iterable[str] | None = None,
) -> ConsoleUser:
    chosen = tuple(products)
    _check(username, role, chosen)
    codes = gemeentecodes_of(gemeentecodes)
    if password is not None:
        why = check_new_password(password)
        if why:
            raise ServiceError(why)
    user = UserStore(ctx.database).create(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password) if password is not None else None,
        role=role,
        products=chosen,
        personal_data=personal_data,
        at=ctx.clock.now(),
        gemeentecodes=codes,
    )
    audit.record(
        ctx,
        "user-create",
        f"gebruiker {username}",
        f"rol {role}; producten {','.join(sorted(chosen))}; gemeentecodes {_codes_text(codes)}",
    )
    return user


def update_user(
    ctx: ServiceContext,
    username: str,
    *,
    role: str | None = None,
    products: Iterable[str] | None = None,
    personal_data: bool | None = None,
    password: str | None = None,
    disabled: bool | None = None,
    gemeentecodes: Iterable[str] | EllipsisType | None = ...,
) -> ConsoleUser:
    """Change the given fields; ``gemeentecodes`` left out (``...``) keeps them, None or an empty
    list lets the account act for every gemeente."""
    store = UserStore(ctx.database)
    user = store.by_username(username)
    if user is None:
        raise NotFoundError(f"geen gebruiker {username!r}")
    chosen = tuple(products) if products is not None else tuple(user.products)
    _check(username, role or user.role, chosen)
    values: dict[str, object] = {"role": role or user.role, "products": chosen}
    if personal_data is not None:
        values["personal_data"] = personal_data
    if password is not None:
        why = check_new_password(password)
        if why:
            raise ServiceError(why)
        values["password_hash"] = hash_password(password)
    if not isinstance(gemeentecodes, EllipsisType):
        codes = gemeentecodes_of(gemeentecodes)
        values["gemeentecodes"] = None if codes is None else sorted(codes)
    if disabled is not None:
        values["disabled_at"] = ctx.clock.now() if disabled else None
    changed = store.update(user.pk, **values)
    audit.record(
        ctx,
        "user-change",
        f"gebruiker {username}",
        f"rol {changed.role}; producten {','.join(sorted(changed.products))}; "
        f"persoonsgegevens {'ja' if changed.personal_data else 'nee'}; "
        f"gemeentecodes {_codes_text(changed.gemeentecodes)}; "
        f"{'geblokkeerd' if changed.disabled_at else 'actief'}"
        + ("; wachtwoord gewijzigd" if password is not None else ""),
    )
    return changed


def list_users(ctx: ServiceContext) -> tuple[ConsoleUser, ...]:
    return tuple(UserStore(ctx.database).list())


def login(ctx: ServiceContext, username: str, password: str) -> LoginResult:
    """Check the password; a new session on success. ``ctx.actor`` is the client address."""
    s = ctx.settings
    now = ctx.clock.now()
    name = username.strip()[:USERNAME_MAX]
    throttle = LoginThrottle(ctx.database)
    locked = throttle.locked_until(name)
    if locked is not None and locked > now:
        audit.record(ctx, "console-login-refused", f"gebruiker {name}", "geblokkeerd na te veel pogingen")
        raise LoginRefused(
            "te veel mislukte pogingen; probeer het over enkele minuten opnieuw "
            f"(geblokkeerd tot {locked:%H:%M} UTC)"
        )
    user = UserStore(ctx.database).by_username(name)
    good = verify_password(user.password_hash if user else None, password)
    if user is None or not good or user.disabled_at is not None:
        failures = throttle.failed(
            name,
            limit=s.console_max_failed_logins,
            lock_until=now + timedelta(minutes=s.console_lockout_minutes),
        )
        audit.record(ctx, "console-login-refused", f"gebruiker {name}", f"poging {failures}")
        raise LoginRefused("onbekende gebruikersnaam of onjuist wachtwoord")
    throttle.reset(name)
    session_id = secrets.token_urlsafe(32)
    sessions = SessionStore(ctx.database)
    # Ended sessions are dropped here, at the rare moment a new one starts (no sweeper needed).
    sessions.purge(now - timedelta(minutes=s.console_session_minutes), now - MAX_SESSION)
    sessions.create(session_id, user.pk, secrets.token_urlsafe(32), now)
    audit.record(ctx, "console-login", f"gebruiker {name}")
    return LoginResult(session_id, user)


def login_external(ctx: ServiceContext, username: str, via: str) -> LoginResult:
    """A session for ``username`` vouched for by an identity broker (``via``): the account must
    exist and not be blocked; its rights come from the account, never from the broker."""
    name = username.strip()[:USERNAME_MAX]
    user = UserStore(ctx.database).by_username(name)
    if user is None or user.disabled_at is not None:
        audit.record(ctx, "console-login-refused", f"gebruiker {name}", f"via {via}: geen (actief) account")
        raise LoginRefused(f"er is geen actief console-account {name!r}; vraag de gebruikersbeheerder")
    now = ctx.clock.now()
    session_id = secrets.token_urlsafe(32)
    sessions = SessionStore(ctx.database)
    sessions.purge(now - timedelta(minutes=ctx.settings.console_session_minutes), now - MAX_SESSION)
    sessions.create(session_id, user.pk, secrets.token_urlsafe(32), now)
    audit.record(ctx, "console-login", f"gebruiker {name}", f"via {via}")
    return LoginResult(session_id, user)


def current_session(ctx: ServiceContext, session_id: str) -> ConsoleSession | None:
    """The live session with this id (touched now), or None when unknown, idle too long or too old."""
    if not session_id or len(session_id) > 128:
        return None
    store = SessionStore(ctx.database)
    found = store.find(session_id)
    now = ctx.clock.now()
    if found is None:
        return None
    idle = timedelta(minutes=ctx.settings.console_session_minutes)
    if now - found.seen_at > idle or now - found.created_at > MAX_SESSION or found.user.disabled_at:
        store.delete(session_id)
        return None
    store.touch(session_id, now)
    return found


def logout(ctx: ServiceContext, session_id: str) -> None:
    SessionStore(ctx.database).delete(session_id)
    audit.record(ctx, "console-logout", f"gebruiker {ctx.actor}")
