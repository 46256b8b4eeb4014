"""TLS contexts for the endpoint (inbound) and for sending to partners (outbound).

Policy (Digikoppeling BEV ch. 3-5, BEV4/BEV5):

- mutual TLS is mandatory (TLS001/002): the server requires a client certificate that chains to
  the trust store; the client verifies the server's chain and host name and presents ours;
- TLS 1.2 is the minimum, TLS 1.3 is offered (TLS004; TLS 1.0/1.1 and SSLv3 are refused, TLS003);
- cipher suites from the NCSC "goed"/"voldoende" list only (TLS006/TLSCIPH001): the TLS 1.3 suites,
  and for TLS 1.2 only ECDHE key exchange with AES-GCM or CHACHA20-POLY1305, so no RSA key exchange,
  no CBC, no 3DES;
- key exchange groups X25519, secp256r1 and secp384r1 only (NCSC "goed"), plus the hybrid
  X25519MLKEM768 where the installed OpenSSL offers it: no finite-field groups, no secp521r1/X448
  (``set_groups``);
- no TLS compression (CRIME) and no renegotiation; the client's suite order is honoured: every
  enabled suite is good (NCSC TLS guidelines 2025: then the client may choose, e.g. CHACHA20 on
  hardware without AES instructions).

Building a context reads the certificate and key files; every file problem becomes a ConfigError
that names the file, checked up front so OpenSSL's terse errors never reach the operator.
"""

from __future__ import annotations

import ctypes
import logging
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ggk_ebms.config import Settings
from ggk_ebms.errors import ConfigError
from ggk_ebms.security.keys import key_matches_certificate, parse_private_key, passphrase_from_settings

# TLS 1.2 suites, strongest first (OpenSSL names). ECDHE only: forward secrecy; AEAD only: no CBC.
TLS12_CIPHERS: Final = (
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
)
# TLS 1.3 suites OpenSSL enables by default; all three are on the NCSC "goed" list. The ssl module
# cannot change them, so they are listed here to check the negotiated suite against.
TLS13_CIPHERS: Final = (
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
)
MINIMUM_VERSION: Final = ssl.TLSVersion.TLSv1_2
# Key exchange groups (OpenSSL names), preferred first. The post-quantum hybrid goes first when the
# library knows it (OpenSSL 3.5+); otherwise the classic three.
TLS_GROUPS: Final = ("X25519", "secp256r1", "secp384r1")
HYBRID_GROUP: Final = "X25519MLKEM768"

log = logging.getLogger(__name__)

_SSL_CTRL_SET_GROUPS_LIST: Final = 92  # OpenSSL ssl.h: SSL_CTX_set1_groups_list is this ctrl


def is_safe_cipher(name: str, protocol: str) -> bool:
    """Whether a negotiated (cipher name, protocol) pair is on the safe list (Digikoppeling BEV ch. 3-5)."""
    if protocol == "TLSv1.3":
        return name in TLS13_CIPHERS
    if protocol == "TLSv1.2":
        return name in TLS12_CIPHERS
    return False


def _apply_policy(context: ssl.SSLContext) -> None:
    context.minimum_version = MINIMUM_VERSION
    context.set_ciphers(":".join(TLS12_CIPHERS))
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.verify_mode = ssl.CERT_REQUIRED
    set_groups(context)


def _libssl() -> ctypes.CDLL:
    import _ssl

    # The _ssl extension is linked against the libssl Python uses; its handle resolves libssl's
    # symbols, so this is the same library instance that owns the context.
    lib = ctypes.CDLL(_ssl.__file__)
    lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    lib.SSL_CTX_ctrl.restype = ctypes.c_long
    lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    lib.SSL_CTX_get_options.restype = ctypes.c_uint64
    return lib


def _ssl_ctx_pointer(context: ssl.SSLContext, lib: ctypes.CDLL) -> int | None:
    """The SSL_CTX* inside a Python SSLContext, or None when it cannot be found safely.

    Python 3.11/3.12 have no ``set_groups`` (3.15 adds one); the SSL_CTX pointer is the first
    field after the object header of ``PySSLContext``. It is only used after a check: OpenSSL's
    options of that pointer must equal the ones Python reports for the context.
    """
    header = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD
    pointer = ctypes.c_void_p.from_address(id(context) + header).value
    if not pointer:
        return None
    if int(lib.SSL_CTX_get_options(pointer)) != int(context.options):
        return None
    return pointer


def set_groups(context: ssl.SSLContext) -> tuple[str, ...]:
    """Restrict key exchange to ``TLS_GROUPS`` (+ ``HYBRID_GROUP`` when offered); the groups set.

    Returns () and logs a warning when the groups cannot be set (then OpenSSL's defaults apply,
    which include ffdhe groups, secp521r1 and X448: all still safe, only not NCSC's shortlist).
    """
    setter = getattr(context, "set_groups", None)
    candidates = ((HYBRID_GROUP, *TLS_GROUPS), TLS_GROUPS)
    if callable(setter):  # Python 3.15+
        for groups in candidates:
            try:
                setter(":".join(groups))
            except ssl.SSLError:
                continue
            return groups
    try:
        lib = _libssl()
        pointer = _ssl_ctx_pointer(context, lib)
    except (OSError, AttributeError, ValueError):
        pointer = None
    if pointer is not None:
        for groups in candidates:
            if lib.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, ":".join(groups).encode("ascii")) == 1:
                return groups
    log.warning("TLS key exchange groups could not be restricted; OpenSSL's defaults apply")
    return ()


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{what} file {path} cannot be read: {exc.strerror or exc}") from None


def _certificates(path: Path, what: str) -> list[x509.Certificate]:
    data = _read(path, what)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(f"{what} file {path} holds no PEM certificate") from None
    return certificates


def _load_identity(
    context: ssl.SSLContext, cert: Path, key: Path, passphrase: bytes | None, what: str
) -> None:
    """Present ``cert`` (leaf first, then any intermediates) with ``key``.

    Checked with cryptography first so a missing passphrase, a wrong passphrase or a key that
    belongs to another certificate each get their own message naming the file.
    """
    leaf = _certificates(cert, f"{what} certificate")[0]
    private_key = parse_private_key(_read(key, f"{what} key"), passphrase, source=str(key))
    if not key_matches_certificate(private_key, leaf.public_bytes(Encoding.DER)):
        raise ConfigError(f"private key {key} does not belong to {what} certificate {cert}")
    try:
        # A callable password stops OpenSSL from ever prompting on a terminal.
        context.load_cert_chain(cert, key, password=lambda: passphrase or b"")
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{what} certificate {cert} with key {key} cannot be used: {exc}") from None


def _load_trust(context: ssl.SSLContext, trust_store: Path) -> None:
    _certificates(trust_store, "trust store")
    try:
        context.load_verify_locations(cafile=trust_store)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"trust store {trust_store} cannot be used: {exc}") from None
    if not context.cert_store_stats().get("x509_ca"):
        raise ConfigError(f"trust store {trust_store} holds no CA certificate")


def server_context(
    cert: Path, key: Path, trust_store: Path, *, passphrase: bytes | None = None
) -> ssl.SSLContext:
    """Inbound: require a client certificate chaining to ``trust_store`` (TLS001/002).

    Which party that certificate may speak for is decided per message by
    ``identity.authorize_client``; the handshake only establishes that it is genuine.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_policy(context)
    # Only good suites are enabled, so the client's preference may decide (see module docstring).
    context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_identity(context, cert, key, passphrase, "TLS server")
    _load_trust(context, trust_store)
    return context


def client_context(
    cert: Path,
    key: Path,
    trust_store: Path,
    *,
    check_hostname: bool = True,
    passphrase: bytes | None = None,
) -> ssl.SSLContext:
    """Outbound: verify the partner's chain and host name, present our client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _apply_policy(context)
    context.check_hostname = check_hostname
    _load_identity(context, cert, key, passphrase, "TLS client")
    _load_trust(context, trust_store)
    return context


def server_context_from_settings(
    settings: Settings, environ: Mapping[str, str] = os.environ
) -> ssl.SSLContext:
    """``server_context`` for ``tls_server_cert``/``tls_server_key``/``tls_trust_store``, with the
    key passphrase from ``key_passphrase_env`` or ``key_passphrase_file``."""
    return server_context(
        settings.tls_server_cert,
        settings.tls_server_key,
        settings.tls_trust_store,
        passphrase=passphrase_from_settings(settings, environ),
    )


def client_context_from_settings(
    settings: Settings, environ: Mapping[str, str] = os.environ, *, check_hostname: bool = True
) -> ssl.SSLContext:
    """``client_context`` for ``tls_client_cert``/``tls_client_key``/``tls_trust_store``, with the
    key passphrase from ``key_passphrase_env`` or ``key_passphrase_file``."""
    return client_context(
        settings.tls_client_cert,
        settings.tls_client_key,
        settings.tls_trust_store,
        check_hostname=check_hostname,
        passphrase=passphrase_from_settings(settings, environ),
    )
