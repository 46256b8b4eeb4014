"""Exception -> layer translation at the client boundary, with the TLS reasons as a table."""

from __future__ import annotations

import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from ggk_ebms.errors import TransportError
from ggk_ebms.transport.failures import alert_layer, ssl_reason, translate, verification_layer
from ggk_ebms.transport.result import Layer

KEY = ConnectionKey("partner.example", 443, True, True, None, None, None)


def ssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] alert")
    error.reason = reason  # type: ignore[misc]
    return error


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    error.verify_code = code  # type: ignore[misc]
    error.verify_message = message  # type: ignore[misc]
    return error


@pytest.mark.parametrize(
    ("reason", "after_handshake", "expected"),
    [
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", True, Layer.TLS_CLIENT_REFUSED),
        ("SSLV3_ALERT_BAD_CERTIFICATE", False, Layer.TLS_CLIENT_REFUSED),
        ("TLSV1_ALERT_UNKNOWN_CA", False, Layer.TLS_CLIENT_REFUSED),
        ("TLSV1_ALERT_UNKNOWN_CA", True, Layer.TLS_CLIENT_REFUSED),
        ("SSLV3_ALERT_CERTIFICATE_EXPIRED", False, Layer.TLS_CLIENT_REFUSED),
        ("SSLV3_ALERT_CERTIFICATE_REVOKED", True, Layer.TLS_CLIENT_REFUSED),
        ("TLSV1_ALERT_ACCESS_DENIED", False, Layer.TLS_CLIENT_REFUSED),
        # handshake_failure: ambiguous inside a TLS 1.2 handshake, only our certificate after it
        ("SSLV3_ALERT_HANDSHAKE_FAILURE", False, Layer.TLS),
        ("SSLV3_ALERT_HANDSHAKE_FAILURE", True, Layer.TLS_CLIENT_REFUSED),
        ("TLSV1_ALERT_PROTOCOL_VERSION", False, Layer.TLS),
        ("WRONG_VERSION_NUMBER", False, Layer.TLS),
        (None, False, Layer.TLS),
    ],
)
def test_alert_layers(reason: str | None, after_handshake: bool, expected: Layer) -> None:
    assert alert_layer(reason, after_handshake=after_handshake) is expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (62, Layer.TLS_NAME_MISMATCH),  # X509_V_ERR_HOSTNAME_MISMATCH
        (64, Layer.TLS_NAME_MISMATCH),  # X509_V_ERR_IP_ADDRESS_MISMATCH
        (19, Layer.TLS_SERVER_UNTRUSTED),  # self-signed certificate in chain
        (20, Layer.TLS_SERVER_UNTRUSTED),  # unable to get local issuer certificate
        (10, Layer.TLS_SERVER_UNTRUSTED),  # certificate has expired
    ],
)
def test_verification_layers(code: int, expected: Layer) -> None:
    assert verification_layer(verify_error(code, "x")) is expected


def test_ssl_reason_looks_behind_aiohttps_reasonless_ssl_errors() -> None:
    inner = ssl_error("TLSV1_ALERT_UNKNOWN_CA")
    outer = aiohttp.ClientConnectorSSLError(KEY, inner)
    outer.__cause__ = inner
    assert ssl_reason(outer) == "TLSV1_ALERT_UNKNOWN_CA"
    assert ssl_reason(ValueError("no TLS here")) is None


def _translate(exc: Exception, *, started: bool = False, fresh: bool | None = True) -> TransportError:
    return translate(
        exc,
        endpoint="partner.example:443",
        tls=True,
        timeout=30.0,
        response_started=started,
        fresh_connection=fresh,
    )


@pytest.mark.parametrize(
    ("exc", "started", "fresh", "layer"),
    [
        (TimeoutError(), False, True, Layer.TIMEOUT),
        (aiohttp.ServerTimeoutError("read"), True, False, Layer.TIMEOUT),
        (
            aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known")),
            False,
            None,
            Layer.DNS,
        ),
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")),
            False,
            None,
            Layer.CONNECT,
        ),
        (aiohttp.ClientConnectorError(KEY, OSError(113, "No route to host")), False, None, Layer.CONNECT),
        # a reset inside the TLS handshake: a stack that drops instead of alerting
        (aiohttp.ClientConnectorError(KEY, ConnectionResetError()), False, None, Layer.TLS_CLIENT_REFUSED),
        (
            aiohttp.ClientConnectorCertificateError(KEY, verify_error(62, "Hostname mismatch")),
            False,
            None,
            Layer.TLS_NAME_MISMATCH,
        ),
        (
            aiohttp.ClientConnectorCertificateError(KEY, verify_error(20, "unable to get local issuer")),
            False,
            None,
            Layer.TLS_SERVER_UNTRUSTED,
        ),
        (
            aiohttp.ClientConnectorSSLError(KEY, ssl_error("SSLV3_ALERT_BAD_CERTIFICATE")),
            False,
            None,
            Layer.TLS_CLIENT_REFUSED,
        ),
        (
            aiohttp.ClientConnectorSSLError(KEY, ssl_error("SSLV3_ALERT_HANDSHAKE_FAILURE")),
            False,
            None,
            Layer.TLS,
        ),
        # TLS 1.3: the alert on the first read after the handshake
        (aiohttp.ClientOSError(1, "alert"), False, True, Layer.HTTP),
        # TLS 1.3 without an alert: reset on a new connection before any response byte
        (aiohttp.ServerDisconnectedError(), False, True, Layer.TLS_CLIENT_REFUSED),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), False, True, Layer.TLS_CLIENT_REFUSED),
        # the same on a pooled keep-alive connection is the server closing an idle connection
        (aiohttp.ServerDisconnectedError(), False, False, Layer.HTTP),
        # after the status line it is a broken response, not a certificate problem
        (aiohttp.ServerDisconnectedError(), True, True, Layer.HTTP),
        (aiohttp.ClientPayloadError("truncated"), True, True, Layer.HTTP),
    ],
)
def test_translate(exc: Exception, started: bool, fresh: bool | None, layer: Layer) -> None:
    error = _translate(exc, started=started, fresh=fresh)
    assert error.layer is layer
    # KVS ch. 5 HTTP status handling; our choice in docs/rules.md: network/TLS/timeout errors recoverable
    assert error.retryable is True
    assert "partner.example:443" in str(error) or layer is Layer.TIMEOUT


def test_post_handshake_alert_in_the_cause_chain_is_the_client_certificate() -> None:
    alert = ssl_error("TLSV13_ALERT_CERTIFICATE_REQUIRED")
    wrapped = aiohttp.ClientOSError(1, str(alert))
    wrapped.__cause__ = alert
    error = _translate(wrapped)
    assert error.layer is Layer.TLS_CLIENT_REFUSED
    assert "TLSV13_ALERT_CERTIFICATE_REQUIRED" in str(error)


def test_reset_in_the_cause_chain_counts_as_a_close() -> None:
    wrapped = aiohttp.ClientOSError(104, "reset")
    wrapped.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert _translate(wrapped, fresh=True).layer is Layer.TLS_CLIENT_REFUSED
    assert _translate(wrapped, fresh=False).layer is Layer.HTTP


def test_own_transport_errors_pass_through_unchanged() -> None:
    own = TransportError(
        "server certificate is not the one the CPA names", retryable=False, layer="tls-server-not-in-cpa"
    )
    assert _translate(own) is own


def test_cause_chains_with_loops_end() -> None:
    first, second = OSError("a"), OSError("b")
    first.__context__, second.__context__ = second, first
    assert _translate(first).layer is Layer.HTTP
