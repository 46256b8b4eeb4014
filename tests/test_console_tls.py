"""With TLS on the management listener the console cookie is Secure (and HttpOnly, SameSite)."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from ggk_ebms.clock import SystemClock
from ggk_ebms.services import gebruikers
from ggk_ebms.services.context import ServiceContext
from tests.api_support import ca_context
from tests.endpoint import party_settings, running

PASSWORD = "een lang genoeg wachtwoord"


async def test_the_session_cookie_is_secure_over_tls(tmp_path: Path) -> None:
    (tmp_path / "cpa").mkdir()
    settings = party_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "cpa",
                              api_tls="always")  # fmt: skip
    async with running(settings) as endpoint:
        assert endpoint.api is not None and endpoint.api.tls
        ctx = ServiceContext(endpoint.database, settings, "test", SystemClock())
        gebruikers.create_user(
            ctx,
            username="anna",
            display_name="Anna",
            password=PASSWORD,
            role="medewerker",
            products=("iwmo",),
        )
        base = endpoint.api.url.replace("127.0.0.1", "localhost") + "/console"
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/login", ssl=ca_context()) as r:
                html = await r.text()
                login_cookie = r.headers["Set-Cookie"]
            token = re.search(r'name="csrf_token" value="([^"]+)"', html)
            assert token is not None
            assert "Secure" in login_cookie and "HttpOnly" in login_cookie
            form = {"csrf_token": token.group(1), "username": "anna", "password": PASSWORD}
            async with session.post(base + "/login", data=form, ssl=ca_context(), allow_redirects=False) as r:
                assert r.status == 303, await r.text()
                cookie = next(v for v in r.headers.getall("Set-Cookie") if v.startswith("ggk_console="))
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Path=/console/" in cookie


async def test_no_console_when_switched_off(tmp_path: Path) -> None:
    (tmp_path / "cpa").mkdir()
    settings = party_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "cpa",
                              console_enabled=False)  # fmt: skip
    async with running(settings) as endpoint:
        assert endpoint.api is not None
        async with aiohttp.ClientSession() as session:
            async with session.get(endpoint.api.url + "/console/login", ssl=ca_context()) as r:
                assert r.status == 404
            async with session.get(endpoint.api.url + "/health/live", ssl=ca_context()) as r:
                assert r.status == 200
