"""Algorithm identifiers a CPA may name, judged against
the Digikoppeling crypto rules (Digikoppeling BEV ch. 5).

Each table maps a W3C algorithm URI to a verdict: ``ok`` (SIGN001-004, ENC001-004), ``sha1``
(forbidden by SIGN001 but tolerated behind the ``allow_sha1`` switch for legacy peers), ``weak``
(allowed with a warning, e.g. AES-CBC which the reference CPAs still name; docs/signing.md) or
``forbidden``. An identifier in no table is unknown and treated as forbidden.
"""

from __future__ import annotations

from typing import Final, Literal

Verdict = Literal["ok", "sha1", "weak", "forbidden"]

# SIGN003: digest methods.
DIGESTS: Final[dict[str, Verdict]] = {
    "http://www.w3.org/2001/04/xmlenc#sha256": "ok",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "ok",
    "http://www.w3.org/2001/04/xmlenc#sha512": "ok",
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmldsig-more#sha224": "forbidden",  # dropped in BEV5 v3.0.0
}

# SIGN004: signature methods.
SIGNATURES: Final[dict[str, Verdict]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": "ok",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": "ok",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": "ok",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": "ok",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": "ok",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": "ok",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": "sha1",
    "http://www.w3.org/2000/09/xmldsig#dsa-sha1": "sha1",
}

# ENC003: payload (data) encryption.
CIPHERS: Final[dict[str, Verdict]] = {
    "http://www.w3.org/2009/xmlenc11#aes128-gcm": "ok",
    "http://www.w3.org/2009/xmlenc11#aes256-gcm": "ok",
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc": "weak",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc": "weak",
    "http://www.w3.org/2001/04/xmlenc#tripledes-cbc": "forbidden",  # decrypt-only legacy, never agreed anew
}

# ENC004: key transport, used by the encryption code; a CPA does not name it.
KEY_TRANSPORTS: Final[dict[str, Verdict]] = {
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p": "ok",
    "http://www.w3.org/2009/xmlenc11#rsa-oaep": "ok",
    "http://www.w3.org/2001/04/xmlenc#rsa-1_5": "forbidden",
}

XMLDSIG_PROTOCOL: Final = "http://www.w3.org/2000/09/xmldsig#"
XMLENC_PROTOCOL: Final = "XMLENC"

# What we write into CPAs we create (Digikoppeling BEV ch. 5).
DEFAULT_DIGEST: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
DEFAULT_SIGNATURE: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DEFAULT_CIPHER: Final = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
DEFAULT_KEY_TRANSPORT: Final = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"


def verdict(table: dict[str, Verdict], uri: str) -> Verdict:
    return table.get(uri.strip(), "forbidden")
