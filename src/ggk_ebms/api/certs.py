"""Client certificates as an alternative to API tokens (setting ``api_client_certificates``).

Each entry maps the SHA-256 fingerprint of a DER client certificate to scopes. The TLS
handshake proves the client holds the key (the certificate must chain to ``tls_trust_store``);
the fingerprint decides what it may do, like a token's scopes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from ggk_ebms.errors import ConfigError
from ggk_ebms.store.tables import TOKEN_SCOPES

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def parse_client_certificates(entries: list[str]) -> Mapping[str, frozenset[str]]:
    """{fingerprint: scopes}; ConfigError naming the entry that is wrong."""
    mapped: dict[str, frozenset[str]] = {}
    for entry in entries:
        left, sep, right = entry.partition("=")
        digest = left.strip().lower().replace(":", "")
        scopes = frozenset(s.strip() for s in right.split(",") if s.strip())
        if not sep or not _FINGERPRINT.match(digest) or not scopes or not scopes <= set(TOKEN_SCOPES):
            raise ConfigError(
                f"setting 'api_client_certificates': {entry!r} is not '<sha256 fingerprint>=<scope>,...' "
                f"with scopes from {', '.join(TOKEN_SCOPES)}"
            )
        mapped[digest] = scopes
    return mapped
