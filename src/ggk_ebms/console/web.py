"""Request plumbing of the console: sessions from the cookie, CSRF checks, rendering, context.

The session cookie is HttpOnly, SameSite=Strict, scoped to the console's path and Secure when
the listener has TLS (or ``console_secure_cookie = "always"``). Every POST carries the session's
CSRF token in the form field ``csrf_token`` (OWASP CSRF cheat sheet: synchronizer token); the login
form, which has no session yet, uses a double-submit cookie.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, TypeVar

import jinja2
from aiohttp import web

from ggk_ebms.api.context import ApiContext
from ggk_ebms.console.rights import PRODUCTS
from ggk_ebms.lifecycle import Business, Status
from ggk_ebms.services.berichtenlog import REFUSED
from ggk_ebms.services.context import ServiceContext
from ggk_ebms.store.console_users import ConsoleSession

COOKIE: Final = "ggk_console"
LOGIN_COOKIE: Final = "ggk_console_login"
BASE: Final = "/console"

T = TypeVar("T")

CTX_KEY: web.AppKey[ApiContext] = web.AppKey("ggk_console_context", ApiContext)
TLS_KEY: web.AppKey[bool] = web.AppKey("ggk_console_tls", bool)
ENV_KEY: web.AppKey[jinja2.Environment] = web.AppKey("ggk_console_jinja", jinja2.Environment)
OIDC_COOKIE: Final = "ggk_console_oidc"


@dataclass(frozen=True)
class Who:
    """The logged-in user of a request and the session's CSRF token."""

    session_id: str
    session: ConsoleSession

    @property
    def csrf(self) -> str:
        return self.session.csrf


def environment() -> jinja2.Environment:
    root = resources.files("ggk_ebms.console") / "templates"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        autoescape=True,  # every value is escaped unless a template says otherwise
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["BASE"] = BASE
    env.globals["PRODUCTS"] = PRODUCTS
    env.globals["STATUSES"] = (*(s.value for s in Status), *(b.value for b in Business), REFUSED)
    env.filters["dt"] = lambda v: "" if v is None else f"{v:%d-%m-%Y %H:%M}"
    return env


def service_context(request: web.Request, actor: str) -> ServiceContext:
    ctx = request.app[CTX_KEY]
    return ServiceContext(ctx.database, ctx.settings, actor, ctx.clock, ctx.ids)


def user_context(request: web.Request, who: Who) -> ServiceContext:
    """The context of the logged-in account: its gemeentecodes narrow every service it calls
    (berichtenlog, bericht, Ophalen, aanleveren), as an API token's do."""
    user = who.session.user
    return dataclasses.replace(service_context(request, user.username), gemeentecodes=user.gemeentecodes)


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


def render(
    request: web.Request, template: str, who: Who | None, status: int = 200, **values: Any
) -> web.Response:
    env = request.app[ENV_KEY]
    text = env.get_template(template).render(who=who, request_path=request.path, **values)
    response = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def secure_cookie(request: web.Request) -> bool:
    return request.app[TLS_KEY] or request.app[CTX_KEY].settings.console_secure_cookie == "always"


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    response.set_cookie(
        name, value, path=BASE + "/", httponly=True, samesite="Strict", secure=secure_cookie(request)
    )


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def new_token() -> str:
    return secrets.token_urlsafe(32)


Handler = Callable[[web.Request, Who], Awaitable[web.StreamResponse]]
