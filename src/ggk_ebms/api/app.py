"""The aiohttp application of the management API, built from the route table.

Per operation, in this order: authentication (401), the scope (403), the token's rate limit
(429), the body size limit (413), then query/body validation (400) and the handler. Every error
is RFC 9457 problem+json (``api.problem``), including aiohttp's own 404/405.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from datetime import timedelta
from typing import Any, get_args, get_origin

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ggk_ebms.api.context import ApiContext
from ggk_ebms.api.operations import MAX_ID, Call, Operation, RouteTable
from ggk_ebms.api.problem import ProblemError, problem
from ggk_ebms.errors import StoreUnavailableError
from ggk_ebms.store.api_tokens import ApiToken, TokenStore

log = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024
# last_used_at is a write per request otherwise; once a minute is precise enough for an audit.
_TOUCH_EVERY = timedelta(minutes=1)
_REALM = 'Bearer realm="ggk-ebms", Basic realm="ggk-ebms"'
CONTEXT_KEY: web.AppKey[ApiContext] = web.AppKey("ggk_ebms_api_context", ApiContext)


def _secret(header: str | None) -> str | None:
    """The token from ``Authorization: Bearer <token>`` or Basic with the token as password
    (so clients written for ebms-core's basic authentication work by setting credentials)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def allowed(token: ApiToken, scope: str) -> bool:
    """``admin`` may do everything; every other scope only its own operations."""
    return scope in token.scopes or "admin" in token.scopes


async def authenticate(ctx: ApiContext, request: web.Request) -> ApiToken:
    secret = _secret(request.headers.get("Authorization"))
    unauthorized = {"WWW-Authenticate": _REALM}
    if secret is None:
        raise ProblemError(
            401, "an API token is required (Authorization: Bearer <token>)", headers=unauthorized
        )
    store = TokenStore(ctx.database, ctx.clock)
    token: ApiToken | None = await _in_thread(store.authenticate, secret)
    now = ctx.clock.now()
    if token is None or not token.usable(now):
        raise ProblemError(401, "the API token is unknown, revoked or expired", headers=unauthorized)
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        await _in_thread(store.touch, token.pk)
    return token


async def _in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ProblemError(413, f"the request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, f"the request body exceeds {limit} bytes")
        chunks.append(chunk)


def _validation_detail(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _query(model: type[BaseModel], request: web.Request) -> BaseModel:
    values: dict[str, Any] = {}
    for key in request.query:
        if key not in model.model_fields and not any(f.alias == key for f in model.model_fields.values()):
            continue
        found = request.query.getall(key)
        field = model.model_fields.get(key) or next(f for f in model.model_fields.values() if f.alias == key)
        values[key] = found if _is_list(field.annotation) else found[-1]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ProblemError(400, _validation_detail(exc)) from None


def _is_list(annotation: Any) -> bool:
    """list[X] or list[X] | None: a query parameter that may repeat."""
    if get_origin(annotation) is list:
        return True
    return any(get_origin(arg) is list for arg in get_args(annotation))


def _wrap(op: Operation) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        ctx = request.app[CONTEXT_KEY]
        token: ApiToken | None = None
        if op.scope is not None:
            token = await authenticate(ctx, request)
            if not allowed(token, op.scope):
                raise ProblemError(403, f"this operation needs the scope {op.scope!r}")
            wait = ctx.limiter.allow(token.name, time.monotonic())
            if wait > 0:
                raise ProblemError(
                    429, "rate limit of this API token reached", headers={"Retry-After": str(int(wait) + 1)}
                )
        call = Call(request, ctx, token)
        for name, kind in op.path_types.items():
            if kind is int:
                value = request.match_info[name]
                if not value.isdigit() or int(value) > MAX_ID:
                    raise ProblemError(400, f"{name} must be an integer from 0 to {MAX_ID}")
        if op.query is not None:
            call.query = _query(op.query, request)
        if op.body is not None or op.raw_body is not None:
            call.raw = await _read_body(request, op.max_body or ctx.settings.api_max_body_bytes)
        if op.body is not None:
            try:
                call.body = op.body.model_validate_json(call.raw or b"null")
            except ValidationError as exc:
                raise ProblemError(400, _validation_detail(exc)) from None
        return await op.handler(call)

    return handle


@web.middleware
async def _problems(request: web.Request, handler: Any) -> web.StreamResponse:
    ctx = request.app[CONTEXT_KEY]
    started = time.perf_counter()
    status = 500
    try:
        response: web.StreamResponse = await handler(request)
        status = response.status
        return response
    except ProblemError as exc:
        status = exc.status
        return exc.response(instance=request.path)
    except StoreUnavailableError:
        # Also reached while checking a token: without the database nothing can be checked,
        # and 503 tells a monitor (and a retrying client) that it is passing, not a bug.
        status = 503
        return problem(503, "the database is not reachable; try again later", instance=request.path)
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return problem(exc.status, exc.reason, headers=headers, instance=request.path)
    except Exception:
        log.exception("management API: %s %s failed", request.method, request.path)
        status = 500
        return problem(500, "internal error; see the server log", instance=request.path)
    finally:
        route = request.match_info.route.resource
        template = route.canonical if route is not None else "unmatched"
        ctx.metrics.latency.labels(request.method, template, str(status)).observe(
            time.perf_counter() - started
        )


def create_api_app(ctx: ApiContext, table: RouteTable) -> web.Application:
    # aiohttp's own cap sits above ours so that _read_body answers first, as problem+json.
    app = web.Application(middlewares=[_problems], client_max_size=ctx.settings.api_max_body_bytes + 1)
    app[CONTEXT_KEY] = ctx
    for op in table.operations:
        app.router.add_route(op.method, op.path, _wrap(op))
    return app
