"""Private keys: loading them (optionally passphrase-protected) and matching them to certificates.

A production key (TLS, signing, decryption) may be encrypted; its passphrase comes from an
environment variable or a file named in the settings (``key_passphrase_env`` /
``key_passphrase_file``), never from the settings file itself. A passphrase never appears in a
message, log line or exception: errors name the key file and what is wrong, nothing more.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ggk_ebms.config import Settings
from ggk_ebms.errors import ConfigError

__all__ = [
    "PrivateKeyTypes",
    "key_matches_certificate",
    "load_private_key",
    "parse_private_key",
    "passphrase_from_settings",
    "read_passphrase",
]


def read_passphrase(
    *,
    passphrase_env: str = "",
    passphrase_file: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> bytes | None:
    """The passphrase named by the settings, or None when neither source is configured.

    Naming both is refused: which one wins would be a guess. A named source that is missing or
    empty is a ConfigError, so a typo in a variable name does not surface as "bad decrypt" later.
    """
    if passphrase_env and passphrase_file is not None:
        raise ConfigError("set key_passphrase_env or key_passphrase_file, not both")
    if passphrase_env:
        value = environ.get(passphrase_env)
        if not value:
            raise ConfigError(
                f"environment variable {passphrase_env} (key_passphrase_env) is not set or empty"
            )
        return value.encode("utf-8")
    if passphrase_file is not None:
        try:
            raw = passphrase_file.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"passphrase file {passphrase_file} cannot be read: {exc.strerror or exc}"
            ) from None
        # Editors end files with a newline; it is never part of the passphrase.
        value_bytes = raw.removesuffix(b"\n").removesuffix(b"\r")
        if not value_bytes:
            raise ConfigError(f"passphrase file {passphrase_file} is empty")
        return value_bytes
    return None


def passphrase_from_settings(settings: Settings, environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The passphrase that ``key_passphrase_env`` / ``key_passphrase_file`` point at, if any."""
    return read_passphrase(
        passphrase_env=settings.key_passphrase_env,
        passphrase_file=settings.key_passphrase_file,
        environ=environ,
    )


def parse_private_key(data: bytes, passphrase: bytes | None, *, source: str) -> PrivateKeyTypes:
    """A private key from PEM or DER bytes; ``source`` names the file in error messages.

    One passphrase setting serves every key, so an unencrypted key next to encrypted ones is
    accepted even when a passphrase is configured.
    """
    load = (
        serialization.load_pem_private_key
        if data.lstrip().startswith(b"-----BEGIN")
        else serialization.load_der_private_key
    )
    try:
        return load(data, password=passphrase)
    except TypeError:
        if passphrase is None:
            raise ConfigError(
                f"private key {source} is encrypted; give its passphrase with "
                "key_passphrase_env or key_passphrase_file"
            ) from None
        try:
            return load(data, password=None)  # configured passphrase, unencrypted key
        except (TypeError, ValueError):
            raise ConfigError(f"private key {source} cannot be read") from None
    except ValueError:
        if passphrase is not None:
            raise ConfigError(
                f"private key {source} cannot be decrypted: wrong passphrase or not a private key"
            ) from None
        raise ConfigError(f"{source} does not hold a readable private key (PEM or DER)") from None
    except Exception:  # cryptography raises UnsupportedAlgorithm and others for odd input
        raise ConfigError(f"{source} does not hold a supported private key") from None


def load_private_key(
    path: Path,
    *,
    passphrase_env: str = "",
    passphrase_file: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> PrivateKeyTypes:
    """Read the private key at ``path``, decrypting it with the configured passphrase if any."""
    passphrase = read_passphrase(
        passphrase_env=passphrase_env, passphrase_file=passphrase_file, environ=environ
    )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"private key file {path} cannot be read: {exc.strerror or exc}") from None
    return parse_private_key(data, passphrase, source=str(path))


def key_matches_certificate(key: PrivateKeyTypes, cert_der: bytes) -> bool:
    """True when the certificate's public key is the public half of ``key``.

    Compared as SubjectPublicKeyInfo DER, which covers every key type alike (settings say the
    signing and encryption keys must match our CPA certificates; config check uses this).
    """
    try:
        certificate = x509.load_der_x509_certificate(cert_der)
    except ValueError:
        return False
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(key.public_key().public_bytes(*spki) == certificate.public_key().public_bytes(*spki))
