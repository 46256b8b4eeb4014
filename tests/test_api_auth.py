"""Authentication and limits of the management API, for every route of the route table (so a
new route cannot be forgotten): no token, a revoked token and a token without the route's
scope are refused with problem+json; the rate limit answers 429; /health/live is open."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ggk_ebms.api.server import route_table
from ggk_ebms.store.api_tokens import TokenStore
from ggk_ebms.store.tables import TOKEN_SCOPES
from tests.api_support import call, token
from tests.endpoint import cpa_folder, party_settings, running

pytestmark = pytest.mark.slow

OPERATIONS = route_table().operations
PROTECTED = [op for op in OPERATIONS if op.scope is not None]


def _path(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", template)


def _problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict[str, object]:
    assert status == expected, body
    assert headers["Content-Type"].startswith("application/problem+json")
    document = json.loads(body)
    assert document["status"] == expected and document["title"]
    return document


def test_only_health_live_is_open() -> None:
    assert [op.path for op in OPERATIONS if op.scope is None] == ["/health/live"]
    assert all(op.scope in TOKEN_SCOPES for op in PROTECTED)


async def test_every_route_refuses_missing_revoked_and_wrong_scope_tokens(tmp_path: Path) -> None:
    settings = party_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa_folder(tmp_path))
    async with running(settings) as endpoint:
        revoked = token(endpoint, "revoked", "admin")
        TokenStore(endpoint.database).revoke("revoked")
        others = {
            scope: token(endpoint, f"not-{scope}", *[s for s in TOKEN_SCOPES if s not in (scope, "admin")])
            for scope in TOKEN_SCOPES
            if scope != "admin"
        }
        others["admin"] = token(endpoint, "not-admin", "read", "send", "operate")
        for op in PROTECTED:
            path = _path(op.path)
            status, headers, body = await call(endpoint, op.method, path)
            assert headers.get("WWW-Authenticate", "").startswith("Bearer")
            _problem(status, headers, body, 401)
            _problem(*await call(endpoint, op.method, path, revoked), 401)
            garbage = await call(endpoint, op.method, path, headers={"Authorization": "Basic !!"})
            _problem(*garbage, 401)
            _problem(*await call(endpoint, op.method, path, others[op.scope]), 403)
        status, _, body = await call(endpoint, "GET", "/health/live")
        assert status == 200 and json.loads(body) == {"status": "live"}


async def test_rate_limit_per_token(tmp_path: Path) -> None:
    settings = party_settings(
        "gemeente",
        tmp_path,
        f"sqlite:///{tmp_path / 'g.db'}",
        cpa_folder(tmp_path),
        api_rate_burst=3,
        api_rate_per_second=0.01,
    )
    async with running(settings) as endpoint:
        first, second = token(endpoint, "first", "read"), token(endpoint, "second", "read")
        for _ in range(3):
            status, _, _ = await call(endpoint, "GET", "/api/v1/cpas", first)
            assert status == 200
        status, headers, body = await call(endpoint, "GET", "/api/v1/cpas", first)
        _problem(status, headers, body, 429)
        assert int(headers["Retry-After"]) >= 1
        # The limit is per token: another token is not held back.
        assert (await call(endpoint, "GET", "/api/v1/cpas", second))[0] == 200


async def test_body_limit_and_unknown_routes_are_problems(tmp_path: Path) -> None:
    settings = party_settings(
        "gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa_folder(tmp_path), api_max_body_bytes=1000
    )
    async with running(settings) as endpoint:
        secret = token(endpoint, "admin", "admin")
        _problem(*await call(endpoint, "POST", "/api/v1/cpas/validate", secret, data=b"x" * 5000), 413)
        _problem(*await call(endpoint, "GET", "/api/v1/nothing-here", secret), 404)
        _problem(*await call(endpoint, "GET", "/api/v1/messages?limit=0", secret), 400)
