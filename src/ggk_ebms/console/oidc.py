"""Optional console login through an identity broker: OpenID Connect authorization code flow.

OpenID Connect Core 1.0 §3.1 with PKCE (RFC 7636, S256) and a nonce; the client authenticates
with client_secret_post. The ID token is checked with the broker's published keys (JWKS): its
signature (RS256/ES256/PS256 only), ``iss`` = the configured issuer, ``aud`` contains our client
id, ``exp``/``iat`` with one minute of leeway, and the ``nonce`` of this login. The claim named by
``console_oidc_username_claim`` must name an existing, unblocked console account: rights stay
with the Gebruikers page, the broker only proves who someone is.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import aiohttp

from ggk_ebms.config import Settings
from ggk_ebms.errors import ConfigError, GgkEbmsError

PENDING_SECONDS: Final = 600  # a login started longer ago is not finished
MAX_PENDING: Final = 10_000  # bound on logins started and not finished (memory)
ALGORITHMS: Final = ("RS256", "ES256", "PS256")
LEEWAY: Final = 60
_TIMEOUT: Final = aiohttp.ClientTimeout(total=15)
_MAX_DOCUMENT: Final = 256 * 1024


class OidcError(GgkEbmsError):
    """The login through the broker failed; the text is fit for the user (Dutch)."""


@dataclass(frozen=True)
class _Pending:
    nonce: str
    verifier: str
    redirect_uri: str
    started: float


@dataclass
class OidcClient:
    settings: Settings
    _metadata: dict[str, Any] | None = None
    _pending: dict[str, _Pending] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.settings.console_oidc_issuer.rstrip("/")

    @staticmethod
    def check_settings(settings: Settings) -> None:
        issuer = urlsplit(settings.console_oidc_issuer)
        loopback = issuer.hostname in ("localhost",) or _is_loopback(issuer.hostname or "")
        if issuer.scheme != "https" and not (issuer.scheme == "http" and loopback):
            raise ConfigError("console_oidc_issuer is an https:// address")
        if not settings.console_oidc_client_id or settings.console_oidc_client_secret_file is None:
            raise ConfigError(
                "console_oidc_client_id and console_oidc_client_secret_file are needed for OIDC"
            )

    async def _get_json(self, session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
        async with session.get(url) as response:
            body = await response.content.read(_MAX_DOCUMENT + 1)
            if response.status != 200 or len(body) > _MAX_DOCUMENT:
                raise OidcError(f"de identiteitsbroker antwoordt niet goed ({response.status} op {url})")
            document = json.loads(body)
        if not isinstance(document, dict):
            raise OidcError("de identiteitsbroker stuurt geen geldig document")
        return document

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
                found = await self._get_json(session, self.issuer + "/.well-known/openid-configuration")
            if str(found.get("issuer", "")).rstrip("/") != self.issuer:
                raise OidcError("de identiteitsbroker noemt een andere issuer dan ingesteld")
            self._metadata = found
        return self._metadata

    async def start(self, redirect_uri: str) -> tuple[str, str]:
        """(state, the broker's authorization URL) for a new login."""
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        meta = await self.metadata()
        now = time.monotonic()
        self._pending = {k: v for k, v in self._pending.items() if now - v.started < PENDING_SECONDS}
        if len(self._pending) >= MAX_PENDING:
            raise OidcError("te veel onafgemaakte aanmeldingen; probeer het over enkele minuten opnieuw")
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        self._pending[state] = _Pending(nonce, verifier, redirect_uri, now)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.console_oidc_client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid profile",
                "state": state,
                "nonce": nonce,
                "code_challenge": create_s256_code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        return state, f"{meta['authorization_endpoint']}?{query}"

    async def finish(self, state: str, code: str) -> str:
        """The account name the broker vouches for, after the code exchange and the ID token checks."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        pending = self._pending.pop(state, None)
        if pending is None or time.monotonic() - pending.started > PENDING_SECONDS:
            raise OidcError("deze aanmelding is verlopen of onbekend; begin opnieuw")
        meta = await self.metadata()
        secret_file = self.settings.console_oidc_client_secret_file
        assert secret_file is not None  # check_settings
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "client_id": self.settings.console_oidc_client_id,
            "client_secret": secret_file.read_text().strip(),
            "code_verifier": pending.verifier,
        }
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
            async with session.post(meta["token_endpoint"], data=form) as response:
                body = await response.content.read(_MAX_DOCUMENT + 1)
                if response.status != 200:
                    raise OidcError(f"de identiteitsbroker weigert de code ({response.status})")
            tokens = json.loads(body)
            keys = await self._get_json(session, meta["jwks_uri"])
        id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
        if not isinstance(id_token, str):
            raise OidcError("de identiteitsbroker stuurt geen ID token")
        try:
            token = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=list(ALGORITHMS))  # type: ignore[arg-type]
            registry = jwt.JWTClaimsRegistry(
                leeway=LEEWAY,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.settings.console_oidc_client_id},
                nonce={"essential": True, "value": pending.nonce},
                exp={"essential": True},
            )
            registry.validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise OidcError(f"het ID token van de identiteitsbroker is niet geldig ({exc})") from None
        username = token.claims.get(self.settings.console_oidc_username_claim)
        if not isinstance(username, str) or not username:
            raise OidcError("het ID token noemt geen gebruikersnaam")
        return username


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
