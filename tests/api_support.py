"""Helpers for the management API tests: tokens, an HTTP client for the API listener."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from ggk_ebms.server.run import Endpoint
from ggk_ebms.store.api_tokens import TokenStore
from tests.endpoint import DEV


def token(endpoint: Endpoint, name: str, *scopes: str) -> str:
    return TokenStore(endpoint.database).create(name, scopes or ("admin",))[1]


def api_url(endpoint: Endpoint) -> str:
    assert endpoint.api is not None
    return endpoint.api.url


def ca_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(DEV / "ca.pem"))


async def call(
    endpoint: Endpoint, method: str, path: str, secret: str | None = None, **kwargs: Any
) -> tuple[int, dict[str, str], bytes]:
    headers = dict(kwargs.pop("headers", {}))
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, api_url(endpoint) + path, headers=headers, ssl=ca_context(), **kwargs) as r,
    ):
        return r.status, dict(r.headers), await r.read()
