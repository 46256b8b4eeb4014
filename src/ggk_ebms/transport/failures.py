"""Translate what aiohttp, ssl and the OS raise while talking to a partner into ``TransportError``.

This is the adapter boundary of the outbound client: nothing from aiohttp leaks past it (house
style, errors.py). Each failure gets a ``layer`` so ``diagnosis`` can say in plain words what went
wrong, and ``retryable`` by the project's rule beside KVS ch. 5 HTTP status handling (docs/rules.md):
network, TLS and timeout failures are worth another attempt. The one exception, a server certificate other
than the CPA names, is raised by the
client itself as not retryable.

Telling "our client certificate was refused" apart is the hard part, because where the refusal
shows up depends on the TLS version and on the partner's TLS stack:

- TLS 1.2: the server verifies our certificate inside the handshake and answers with an alert
  (``bad_certificate``, ``unknown_ca``, ``certificate_unknown`` …), which ends the handshake;
- TLS 1.3: the client finishes its side of the handshake before the server has looked at the
  certificate, so the alert (``certificate_required``, ``unknown_ca`` …) arrives on the first read
  after the handshake, while we wait for the HTTP response;
- some stacks (Python's asyncio among them) send no alert and just close the connection: a reset
  during the handshake, or right after it on a connection made for this request, before any
  response byte.

A ``handshake_failure`` alert inside a TLS 1.2 handshake is ambiguous (no common cipher or version,
or a missing client certificate), so it stays plain "tls"; after the handshake it can only be about
our certificate.
"""

from __future__ import annotations

import errno
import ssl
from collections.abc import Iterator
from typing import Final

import aiohttp

from ggk_ebms.errors import TransportError
from ggk_ebms.transport.result import Layer

# OpenSSL reason codes of alerts a server sends when it does not accept the client certificate
# (RFC 8446 §6.2; RFC 5246 §7.2.2).
CLIENT_CERT_REFUSED_REASONS: Final = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
    }
)
HANDSHAKE_FAILURE_REASON: Final = "SSLV3_ALERT_HANDSHAKE_FAILURE"

# X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH (OpenSSL x509_vfy.h).
NAME_MISMATCH_VERIFY_CODES: Final = frozenset({62, 64})


def ssl_reason(exc: BaseException) -> str | None:
    """The OpenSSL reason code (``TLSV1_ALERT_UNKNOWN_CA``) found in the exception chain.

    aiohttp's own SSL exceptions subclass ``ssl.SSLError`` without a reason, so the chain is
    searched for the first error that carries one (the one OpenSSL raised).
    """
    for current in _chain(exc):
        reason = getattr(current, "reason", None)
        if isinstance(current, ssl.SSLError) and isinstance(reason, str):
            return reason
    return None


def verification_layer(exc: ssl.SSLCertVerificationError) -> Layer:
    """Our check of the partner's server certificate failed:
    wrong name, or not trusted (Digikoppeling BEV ch. 3-5)."""
    if getattr(exc, "verify_code", None) in NAME_MISMATCH_VERIFY_CODES:
        return Layer.TLS_NAME_MISMATCH
    return Layer.TLS_SERVER_UNTRUSTED


def alert_layer(reason: str | None, *, after_handshake: bool) -> Layer:
    """Layer of an SSL error carrying ``reason``; see the module docstring for the TLS 1.2/1.3 split."""
    if reason in CLIENT_CERT_REFUSED_REASONS:
        return Layer.TLS_CLIENT_REFUSED
    if reason == HANDSHAKE_FAILURE_REASON and after_handshake:
        return Layer.TLS_CLIENT_REFUSED
    return Layer.TLS


def translate(
    exc: Exception,
    *,
    endpoint: str,
    tls: bool,
    timeout: float,
    response_started: bool,
    fresh_connection: bool | None,
) -> TransportError:
    """One ``TransportError`` for anything raised during a POST to ``endpoint`` (``host:port``).

    ``response_started``: the status line had arrived when it failed. ``fresh_connection``: the
    request ran on a connection opened for it (True), a pooled keep-alive one (False) or unknown.
    Callers pass what they caught as ``aiohttp.ClientError``, ``OSError`` (``ssl.SSLError`` is one)
    or ``TimeoutError``; anything else is a programming error and should not be caught.
    """
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, TimeoutError):
        # aiohttp's ServerTimeoutError/ConnectionTimeoutError are TimeoutError subclasses too.
        return _error(Layer.TIMEOUT, f"no answer from {endpoint} within the time limit ({timeout:g} s)")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        if isinstance(cert_error, ssl.SSLCertVerificationError):
            layer = verification_layer(cert_error)
            detail = getattr(cert_error, "verify_message", None) or str(cert_error)
        else:
            layer, detail = Layer.TLS_SERVER_UNTRUSTED, str(cert_error)
        return _error(layer, f"server certificate of {endpoint} refused: {detail}")
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        reason = ssl_reason(exc)
        return _error(
            alert_layer(reason, after_handshake=False),
            f"TLS handshake with {endpoint} failed: {reason or _os_text(exc)}",
        )
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return _error(Layer.DNS, f"host name of {endpoint} not found: {_os_text(exc)}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _connector_error(exc, endpoint, tls=tls)
    return _exchange_error(
        exc, endpoint=endpoint, response_started=response_started, fresh_connection=fresh_connection
    )


def _connector_error(exc: aiohttp.ClientConnectorError, endpoint: str, *, tls: bool) -> TransportError:
    os_error = exc.os_error
    if isinstance(os_error, ConnectionResetError) and tls:
        # TCP was up (a refused connect is ConnectionRefusedError), so the reset came inside the
        # TLS handshake: a server stack that drops instead of alerting on a client certificate.
        return _error(
            Layer.TLS_CLIENT_REFUSED,
            f"{endpoint} closed the connection during the TLS handshake, after we presented our "
            "client certificate",
        )
    if isinstance(os_error, ConnectionRefusedError):
        return _error(Layer.CONNECT, f"connection to {endpoint} refused: nothing listens there")
    return _error(Layer.CONNECT, f"cannot connect to {endpoint}: {_os_text(exc)}")


def _exchange_error(
    exc: BaseException, *, endpoint: str, response_started: bool, fresh_connection: bool | None
) -> TransportError:
    reason = ssl_reason(exc)
    if reason is not None:
        layer = alert_layer(reason, after_handshake=True)
        if layer is Layer.TLS_CLIENT_REFUSED:
            return _error(layer, f"{endpoint} refused our client certificate after the handshake: {reason}")
        return _error(layer, f"TLS error with {endpoint}: {reason}")
    closed = (
        isinstance(exc, aiohttp.ServerDisconnectedError)
        or _find(exc, ConnectionResetError) is not None
        or getattr(exc, "errno", None) == errno.ECONNRESET
    )
    if closed and not response_started and fresh_connection:
        # TLS 1.3 without an alert: the handshake "succeeded" on our side, then the server hung up
        # before answering on a connection it had just accepted.
        return _error(
            Layer.TLS_CLIENT_REFUSED,
            f"{endpoint} closed the new connection right after the TLS handshake, before answering: "
            "it most likely does not accept our client certificate",
        )
    if closed:
        return _error(Layer.HTTP, f"{endpoint} closed the connection before the response was complete")
    return _error(Layer.HTTP, f"HTTP exchange with {endpoint} failed: {_describe(exc)}")


def _error(layer: Layer, message: str) -> TransportError:
    return TransportError(message, retryable=True, layer=layer)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its causes/contexts; an aiohttp connector error's ``os_error`` counts too.

    Guarded against loops, which exception chains can have.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, aiohttp.ClientConnectorError) and id(current.os_error) not in seen:
            yield current.os_error
            seen.add(id(current.os_error))
        current = current.__cause__ or current.__context__


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """First exception of ``kind`` in the chain."""
    return next((current for current in _chain(exc) if isinstance(current, kind)), None)


def _os_text(exc: aiohttp.ClientConnectorError | BaseException) -> str:
    os_error = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    return getattr(os_error, "strerror", None) or str(os_error) or type(os_error).__name__


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
