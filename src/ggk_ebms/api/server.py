"""The management API listener: its route table, its app and its own TCP site.

Bound to ``api_host:api_port`` (default 127.0.0.1:8480), TLS with our server certificate unless
bound to loopback (setting ``api_tls``). Clients are not asked for a certificate here: they
authenticate with an API token (docs/api.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from ggk_ebms.api import v1, v1_services, v19
from ggk_ebms.api.app import create_api_app
from ggk_ebms.api.certs import parse_client_certificates
from ggk_ebms.api.context import ApiContext
from ggk_ebms.api.health import as_body, readiness
from ggk_ebms.api.metrics import ApiMetrics
from ggk_ebms.api.openapi import openapi_document
from ggk_ebms.api.operations import Call, Operation, RouteTable
from ggk_ebms.api.ratelimit import RateLimiter
from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.errors import ConfigError
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.security.keys import passphrase_from_settings
from ggk_ebms.security.tls import MINIMUM_VERSION
from ggk_ebms.store.db import Database

_JSON = "application/json"


class CheckModel(BaseModel):
    name: str
    ok: bool
    detail: str


class HealthModel(BaseModel):
    status: str
    checks: list[CheckModel]


async def live(call: Call) -> web.StreamResponse:
    return web.json_response({"status": "live"})


async def ready(call: Call) -> web.StreamResponse:
    checks = await readiness(call.ctx.database, call.ctx.settings, call.ctx.clock.now(), call.ctx.workers())
    body = as_body(checks)
    return web.json_response(body, status=200 if body["status"] == "ready" else 503)


async def metrics(call: Call) -> web.StreamResponse:
    data = await asyncio.to_thread(call.ctx.metrics.render)
    return web.Response(body=data, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def route_table() -> RouteTable:
    table = RouteTable()
    table.add(Operation("GET", "/health/live", None, live, "The process is up", "health.live", "health"))
    table.add(
        Operation(
            "GET",
            "/health/ready",
            "read",
            ready,
            "Ready to work, or why not",
            "health.ready",
            "health",
            response=HealthModel,
            errors=(503,),
        )
    )
    table.add(
        Operation(
            "GET",
            "/metrics",
            "read",
            metrics,
            "Prometheus metrics",
            "metrics",
            "metrics",
            response=str,
            response_media="text/plain",
        )
    )
    table.extend(v1.OPERATIONS)
    table.extend(v1_services.OPERATIONS)
    document = json.dumps(openapi_document(table.under(v1.PREFIX))).encode()

    async def openapi(call: Call) -> web.StreamResponse:
        return web.Response(body=document, content_type=_JSON)

    table.add(
        Operation(
            "GET",
            f"{v1.PREFIX}/openapi.json",
            "read",
            openapi,
            "This document",
            "openapi",
            "openapi",
            response=dict[str, Any],
        )
    )
    table.extend(v19.OPERATIONS)
    return table


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.api_tls != "always" and _is_loopback(settings.api_host):
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    passphrase = passphrase_from_settings(settings)
    context.load_cert_chain(
        settings.tls_server_cert, settings.tls_server_key, password=lambda: passphrase or b""
    )
    if settings.api_client_certificates:
        # Optional: a client without a certificate still authenticates with a token.
        context.load_verify_locations(cafile=settings.tls_trust_store)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


@dataclass
class ApiServer:
    runner: web.AppRunner
    port: int
    tls: bool
    context: ApiContext

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.context.settings.api_host}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_api(
    settings: Settings,
    database: Database,
    *,
    agreements: AgreementCache,
    clock: Clock,
    ids: IdGenerator,
    workers: Callable[[], list[asyncio.Task[None]]],
) -> ApiServer:
    ctx = ApiContext(
        settings=settings,
        database=database,
        agreements=agreements,
        clock=clock,
        ids=ids,
        limiter=RateLimiter(settings.api_rate_per_second, settings.api_rate_burst),
        metrics=ApiMetrics(settings, database, clock.now),
        workers=workers,
        client_certificates=parse_client_certificates(settings.api_client_certificates),
    )
    app = create_api_app(ctx, route_table())
    context = api_ssl_context(settings)
    if settings.console_enabled:
        # The web console shares this listener, its TLS and the services (docs/console.md).
        from ggk_ebms.console.app import create_console_app

        app.add_subapp("/console/", create_console_app(ctx, tls=context is not None))
    runner = web.AppRunner(app, shutdown_timeout=settings.shutdown_grace_seconds, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.api_host, settings.api_port, ssl_context=context, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        where = f"{settings.api_host}:{settings.api_port}"
        raise ConfigError(
            f"the management API cannot listen on {where}: {exc.strerror or exc} (settings api_host/api_port)"
        ) from None
    port = settings.api_port
    server = site._server
    if port == 0 and server is not None and server.sockets:  # type: ignore[attr-defined]
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return ApiServer(runner, port, context is not None, ctx)
