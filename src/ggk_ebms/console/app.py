"""The console's aiohttp application: login, logout, dashboard, gebruikers and the product tabs.

Mounted under ``/console/`` on the management listener (api.server). Every page needs a session;
every POST needs the session's CSRF token; the product tabs need the product among the user's
rights (docs/console.md). The pages call the services of ``ggk_ebms.services`` only.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from ggk_ebms.api.context import ApiContext
from ggk_ebms.console import dashboard_view, tabs
from ggk_ebms.console.oidc import OidcClient, OidcError
from ggk_ebms.console.rights import ROLES, covers_installation, may_manage_users
from ggk_ebms.console.web import (
    BASE,
    COOKIE,
    CTX_KEY,
    ENV_KEY,
    LOGIN_COOKIE,
    OIDC_COOKIE,
    TLS_KEY,
    Who,
    environment,
    in_thread,
    new_token,
    render,
    same_token,
    secure_cookie,
    service_context,
    set_cookie,
    user_context,
)
from ggk_ebms.errors import GgkEbmsError, StoreUnavailableError
from ggk_ebms.services import gebruikers
from ggk_ebms.services.context import NotFoundError, ServiceError

log = logging.getLogger(__name__)

Page = Callable[[web.Request, Who], Awaitable[web.StreamResponse]]
CSRF_HEADER = "X-CSRF-Token"


OIDC_KEY: web.AppKey[OidcClient] = web.AppKey("ggk_console_oidc", OidcClient)


class Forbidden(Exception):
    """The user lacks the right for this page or action (403 page)."""


def _client(request: web.Request) -> str:
    return request.remote or "onbekend"


async def _who(request: web.Request) -> Who | None:
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    found = await in_thread(
        gebruikers.current_session, service_context(request, _client(request)), session_id
    )
    return None if found is None else Who(session_id, found)


def page(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A page behind the login: session first, then the CSRF token of a POST, then the handler."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        who = await _who(request)
        if who is None:
            if request.method == "GET":
                raise web.HTTPSeeOther(f"{BASE}/login")
            return render(request, "error.html", None, status=401, message="U bent niet (meer) ingelogd.")
        if request.method == "POST" and not await _csrf_ok(request, who):
            return render(
                request,
                "error.html",
                who,
                status=403,
                message="Het formulier mist een geldig CSRF-token. Laad de pagina opnieuw.",
            )
        try:
            return await handler(request, who)
        except Forbidden as exc:
            return render(request, "error.html", who, status=403, message=str(exc) or "Geen toegang.")
        except NotFoundError as exc:
            return render(request, "error.html", who, status=404, message=str(exc))
        except ServiceError as exc:
            return render(request, "error.html", who, status=400, message=str(exc))
        except StoreUnavailableError:
            return render(request, "error.html", who, status=503, message="De database is niet bereikbaar.")
        except GgkEbmsError as exc:
            return render(request, "error.html", who, status=400, message=str(exc))

    return wrapped


async def _csrf_ok(request: web.Request, who: Who) -> bool:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return same_token(header, who.csrf)
    # request.post() is cached by aiohttp, so the handler reads the same form again for free;
    # file fields are spooled to temporary files within the listener's body limit.
    form = await request.post()
    value = form.get("csrf_token")
    return same_token(value if isinstance(value, str) else None, who.csrf)


# --- login and logout -------------------------------------------------------------------------


async def login_form(request: web.Request) -> web.StreamResponse:
    token = new_token()
    response = render(
        request, "login.html", None, login_token=token, error=None, username="", oidc=OIDC_KEY in request.app
    )
    set_cookie(request, response, LOGIN_COOKIE, token)
    return response


async def login_post(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = request.cookies.get(LOGIN_COOKIE, "")
    posted = form.get("csrf_token")
    username = str(form.get("username", ""))[:200]
    if not token or not same_token(posted if isinstance(posted, str) else None, token):
        return render(
            request,
            "error.html",
            None,
            status=403,
            message="Het inlogformulier mist een geldig CSRF-token. Laad de pagina opnieuw.",
        )
    password = str(form.get("password", ""))
    sctx = service_context(request, _client(request))
    try:
        result = await in_thread(gebruikers.login, sctx, username, password)
    except gebruikers.LoginRefused as exc:
        fresh = new_token()
        response = render(
            request, "login.html", None, status=401, login_token=fresh, error=str(exc), username=username,
            oidc=OIDC_KEY in request.app,
        )  # fmt: skip
        set_cookie(request, response, LOGIN_COOKIE, fresh)
        return response
    response = web.HTTPSeeOther(f"{BASE}/dashboard")
    set_cookie(request, response, COOKIE, result.session_id)
    response.del_cookie(LOGIN_COOKIE, path=BASE + "/")
    raise response


@page
async def logout(request: web.Request, who: Who) -> web.StreamResponse:
    await in_thread(gebruikers.logout, service_context(request, who.session.user.username), who.session_id)
    response = web.HTTPSeeOther(f"{BASE}/login")
    response.del_cookie(COOKIE, path=BASE + "/")
    raise response


async def oidc_login(request: web.Request) -> web.StreamResponse:
    client = request.app[OIDC_KEY]
    redirect_uri = f"{request.scheme}://{request.host}{BASE}/oidc/callback"
    try:
        state, url = await client.start(redirect_uri)
    except (OidcError, aiohttp.ClientError, TimeoutError) as exc:
        return render(
            request, "error.html", None, status=502, message=f"Inloggen via de broker lukt niet: {exc}"
        )
    response = web.HTTPSeeOther(url)
    # Lax, not Strict: the broker's redirect back is a cross-site navigation that must carry it.
    response.set_cookie(
        OIDC_COOKIE, state, path=BASE + "/oidc/", httponly=True, samesite="Lax",
        secure=secure_cookie(request), max_age=600,
    )  # fmt: skip
    raise response


async def oidc_callback(request: web.Request) -> web.StreamResponse:
    client = request.app[OIDC_KEY]
    state = request.query.get("state", "")
    code = request.query.get("code", "")
    if not state or not code or not same_token(request.cookies.get(OIDC_COOKIE), state):
        return render(
            request, "error.html", None, status=400, message="Deze aanmelding hoort niet bij deze browser."
        )
    try:
        username = await client.finish(state, code)
        result = await in_thread(
            gebruikers.login_external, service_context(request, _client(request)), username, "OIDC"
        )
    except (OidcError, gebruikers.LoginRefused, aiohttp.ClientError, TimeoutError) as exc:
        return render(
            request, "error.html", None, status=403, message=f"Inloggen via de broker lukt niet: {exc}"
        )
    # A page of our own that moves on to the dashboard: the SameSite=Strict session cookie is
    # only sent on a navigation that starts on our site, not on the broker's redirect chain.
    response = render(request, "oidc_done.html", None)
    set_cookie(request, response, COOKIE, result.session_id)
    response.del_cookie(OIDC_COOKIE, path=BASE + "/oidc/")
    return response


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(f"{BASE}/dashboard")


# --- dashboard --------------------------------------------------------------------------------


@page
async def dashboard(request: web.Request, who: Who) -> web.StreamResponse:
    sctx = user_context(request, who)
    view = await in_thread(dashboard_view.build, sctx, who.session.user.products)
    return render(request, "dashboard.html", who, view=view)


# --- gebruikers -------------------------------------------------------------------------------


def _need_user_admin(who: Who) -> None:
    if not may_manage_users(who.session.user.role):
        raise Forbidden("Alleen een gebruikersbeheerder beheert accounts.")
    if not covers_installation(who.session.user.gemeentecodes):
        # Accounts cover the whole installation: an account limited to some gemeenten could
        # otherwise widen its own rights (docs/console.md "Rechten per gemeentecode").
        raise Forbidden("Alleen een account voor alle gemeenten beheert accounts.")


@page
async def users_page(request: web.Request, who: Who) -> web.StreamResponse:
    _need_user_admin(who)
    sctx = service_context(request, who.session.user.username)
    users = await in_thread(gebruikers.list_users, sctx)
    return render(request, "gebruikers.html", who, users=users, roles=ROLES, message=None)


def _products_of(form: Any) -> tuple[str, ...]:
    return tuple(p for p in form.getall("products", []) if isinstance(p, str))


def _codes_of(form: Any) -> tuple[str, ...] | None:
    """The gemeentecodes field: separated by spaces or commas; empty means every gemeente."""
    text = str(form.get("gemeentecodes", ""))[:2000]
    codes = tuple(c for c in text.replace(",", " ").split() if c)
    return codes or None


@page
async def users_create(request: web.Request, who: Who) -> web.StreamResponse:
    _need_user_admin(who)
    form = await request.post()
    sctx = service_context(request, who.session.user.username)
    await in_thread(
        functools.partial(
            gebruikers.create_user,
            sctx,
            username=str(form.get("username", "")).strip(),
            display_name=str(form.get("display_name", "")).strip(),
            password=str(form.get("password", "")),
            role=str(form.get("role", "")),
            products=_products_of(form),
            personal_data=form.get("personal_data") == "ja",
            gemeentecodes=_codes_of(form),
        )
    )
    raise web.HTTPSeeOther(f"{BASE}/gebruikers")


@page
async def users_update(request: web.Request, who: Who) -> web.StreamResponse:
    _need_user_admin(who)
    form = await request.post()
    username = request.match_info["username"]
    password = str(form.get("password", ""))
    sctx = service_context(request, who.session.user.username)
    await in_thread(
        functools.partial(
            gebruikers.update_user,
            sctx,
            username,
            role=str(form.get("role", "")) or None,
            products=_products_of(form),
            personal_data=form.get("personal_data") == "ja",
            password=password or None,
            disabled=form.get("disabled") == "ja",
            gemeentecodes=_codes_of(form),
        )
    )
    raise web.HTTPSeeOther(f"{BASE}/gebruikers")


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    text = request.app[ENV_KEY].get_template(f"static/{name}").render()
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    return web.Response(text=text, content_type=kind, headers={"Cache-Control": "max-age=300"})


@web.middleware
async def _headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    # No framing (clickjacking), no inline script from elsewhere, no referrer to partners.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def create_console_app(ctx: ApiContext, *, tls: bool) -> web.Application:
    app = web.Application(
        middlewares=[_headers], client_max_size=ctx.settings.aanlever_max_zip_bytes + 1024 * 1024
    )
    app[CTX_KEY] = ctx
    app[TLS_KEY] = tls
    app[ENV_KEY] = environment()
    app.router.add_get("/", root)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_post)
    app.router.add_post("/logout", logout)
    app.router.add_get("/dashboard", dashboard)
    app.router.add_get("/gebruikers", users_page)
    app.router.add_post("/gebruikers", users_create)
    app.router.add_post("/gebruikers/{username}", users_update)
    app.router.add_get("/static/{name:[a-z]+\\.(css|js)}", static_file)
    if ctx.settings.console_oidc_issuer:
        OidcClient.check_settings(ctx.settings)
        app[OIDC_KEY] = OidcClient(ctx.settings)
        app.router.add_get("/oidc/login", oidc_login)
        app.router.add_get("/oidc/callback", oidc_callback)
    tabs.add_routes(app, page, Forbidden)
    return app


__all__ = ["create_console_app"]
