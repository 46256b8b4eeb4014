"""Keyed hashing of identifiers (HMAC-SHA-256, RFC 2104) and the key file it reads.

A plain SHA-256 of a BSN would not protect it: there are fewer than 10^9 BSNs, so hashing every
one takes minutes and turns the hash back into the BSN. With a secret key, trying every value
needs the key, which never leaves this installation and never enters the database.

Output is base32 without padding, lower case: 32 characters (160 bits). Base32 has no long runs
of digits, so a hash never looks like a 9-digit BSN to a search for those.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Final

from ggk_ebms.errors import ConfigError

KEY_BYTES: Final = 32
HASH_BYTES: Final = 20


class KeyedHasher:
    """HMAC-SHA-256 per hash domain: one value hashes alike across files and weeks under one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ConfigError("the Ketendata key must be at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:  # never show the key
        return f"KeyedHasher(key_id={self.key_id!r})"

    @property
    def key_id(self) -> str:
        """A public fingerprint of the key, recorded with every export (tells which key made it)."""
        return hmac.new(self._key, b"ggk-ebms ketendata key id", hashlib.sha256).hexdigest()[:16]

    def hash(self, domain: str, value: str) -> str:
        # The domain is part of the MAC input, so a BSN and a ToewijzingNummer with the same
        # digits never give the same hash.
        mac = hmac.new(self._key, f"{domain}\x00{value.strip()}".encode(), hashlib.sha256).digest()
        return base64.b32encode(mac[:HASH_BYTES]).decode("ascii").lower()


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def read_key(path: Path) -> bytes:
    """The key stored (hex) in ``path``. Raises ConfigError when absent or malformed."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigError(f"Ketendata key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Ketendata key file {path} cannot be read: {exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"Ketendata key file {path} does not hold a hex key") from None
    if len(key) < 16:
        raise ConfigError(f"Ketendata key file {path} holds a key shorter than 16 bytes")
    return key


def write_key(path: Path, key: bytes) -> None:
    """Write ``key`` to ``path`` readable by the owner only, replacing any old key atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
