"""Console login through an identity broker (OIDC code flow with PKCE) in a real browser, against a
small broker written here: discovery, authorize (approves at once as a configured person), token
(checks code, client secret and PKCE verifier), JWKS."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.console_support import Background, RunningEndpoint, make_user, require_browser
from tests.endpoint import party_settings
from tests.process import free_port

pytestmark = pytest.mark.slow
CLIENT_ID = "ggk-console"
SECRET = "broker-secret-for-tests"


@dataclass
class Broker:
    port: int
    subject: str = "oidc-anna"
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1", "use": "sig"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    nonce_override: str | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        app.router.add_get("/jwks", self.jwks)
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "jwks_uri": self.issuer + "/jwks",
            }
        )

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        assert q["client_id"] == CLIENT_ID and q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": q["nonce"],
            "challenge": q["code_challenge"],
            "redirect": q["redirect_uri"],
        }
        raise web.HTTPFound(q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]}))

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = self.codes.pop(str(form["code"]), None)
        verifier = str(form["code_verifier"]).encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if grant is None or form["client_secret"] != SECRET or challenge != grant["challenge"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        now = int(time.time())
        claims = {
            "iss": self.issuer, "aud": CLIENT_ID, "sub": "s-1", "iat": now, "exp": now + 300,
            "nonce": self.nonce_override or grant["nonce"], "preferred_username": self.subject,
        }  # fmt: skip
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
        return web.json_response({"access_token": "a", "token_type": "Bearer", "id_token": id_token})

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.key.as_dict(private=False)]})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningEndpoint, Broker]]:
    require_browser()
    tmp = tmp_path_factory.mktemp("console-oidc")
    (tmp / "cpa").mkdir()
    secret = tmp / "oidc-secret"
    secret.write_text(SECRET)
    broker = Broker(free_port())
    background = Background()
    runner = web.AppRunner(broker.app())
    background.run(runner.setup())
    background.run(web.TCPSite(runner, "127.0.0.1", broker.port).start())
    settings = party_settings(
        "gemeente", tmp, f"sqlite:///{tmp / 'db.sqlite'}", tmp / "cpa",
        console_oidc_issuer=broker.issuer, console_oidc_client_id=CLIENT_ID,
        console_oidc_client_secret_file=secret,
    )  # fmt: skip
    site = RunningEndpoint(background, settings)
    make_user(site.endpoint, "oidc-anna", "medewerker", ("iwmo",))
    try:
        yield site, broker
    finally:
        site.stop()
        background.run(runner.cleanup())
        background.close()


def _browser_login(site: RunningEndpoint) -> tuple[str, str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page: Any = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(site.console + "/login")
        page.get_by_role("link", name="Inloggen via de identiteitsbroker").click()
        page.wait_for_load_state("networkidle")
        result = page.url, page.locator("body").inner_text()
        browser.close()
        return result


def test_login_through_the_broker(setup: Any, tmp_path: Path) -> None:
    site, broker = setup
    broker.subject, broker.nonce_override = "oidc-anna", None
    url, text = _browser_login(site)
    assert url.endswith("/console/dashboard"), text
    assert "Oidc-anna (medewerker)" in text


def test_the_broker_cannot_log_in_someone_without_an_account(setup: Any) -> None:
    site, broker = setup
    broker.subject, broker.nonce_override = "onbekend", None
    url, text = _browser_login(site)
    assert "geen actief console-account" in text and not url.endswith("/dashboard")


def test_an_id_token_with_another_nonce_is_refused(setup: Any) -> None:
    site, broker = setup
    broker.subject, broker.nonce_override = "oidc-anna", "replayed-nonce"
    url, text = _browser_login(site)
    assert "ID token" in text and "niet geldig" in text and not url.endswith("/dashboard")
