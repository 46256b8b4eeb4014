"""Plain-words diagnosis of a Ping, one row per failure layer (docs/sending.md)."""

from __future__ import annotations

import pytest

from ggk_ebms import ns
from ggk_ebms.errors import TransportError
from ggk_ebms.mime.related import build_related
from ggk_ebms.transport.diagnosis import diagnose, read_envelope
from ggk_ebms.transport.result import HttpResult, Layer

URL = "https://rinis.example:8443/ebms"
PING_ID = "ping-1@gemeente.example"


def envelope(header: str = "", body: str = "") -> bytes:
    return (
        f'<SOAP:Envelope xmlns:SOAP="{ns.SOAP_ENV}" xmlns:eb="{ns.EB}">'
        f"<SOAP:Header>{header}</SOAP:Header><SOAP:Body>{body}</SOAP:Body></SOAP:Envelope>"
    ).encode()


def message_header(action: str, ref: str | None = PING_ID) -> str:
    ref_xml = f"<eb:RefToMessageId>{ref}</eb:RefToMessageId>" if ref else ""
    return (
        '<eb:MessageHeader eb:version="2.0" SOAP:mustUnderstand="1">'
        f"<eb:Service>{ns.EBMS_SERVICE}</eb:Service><eb:Action>{action}</eb:Action>"
        f"<eb:MessageData><eb:MessageId>reply-1@rinis.example</eb:MessageId>{ref_xml}</eb:MessageData>"
        "</eb:MessageHeader>"
    )


def error_list(code: str, description: str, severity: str = "Error") -> str:
    return (
        f'<eb:ErrorList eb:version="2.0" eb:highestSeverity="{severity}">'
        f'<eb:Error eb:codeContext="{ns.EBMS_ERRORS_CONTEXT}" eb:errorCode="{code}" eb:severity="{severity}" '
        f'eb:location="//Header/MessageHeader/To/PartyId"><eb:Description xml:lang="en">{description}'
        "</eb:Description></eb:Error></eb:ErrorList>"
    )


def fault(text: str) -> str:
    return f"<SOAP:Fault><faultcode>SOAP:Client</faultcode><faultstring>{text}</faultstring></SOAP:Fault>"


def response(
    status: int, body: bytes = b"", content_type: str | None = "text/xml", elapsed: float = 0.042
) -> HttpResult:
    return HttpResult(status, content_type if body else None, body, elapsed, None)


@pytest.mark.parametrize(
    ("layer", "message", "summary_part", "advice_part"),
    [
        ("dns", "host name not found", "rinis.example not found", "Endpoint"),
        ("connect", "refused", "rinis.example:8443: nothing listens", "port"),
        (
            "tls-server-untrusted",
            "verify failed",
            "does not chain to our trust store (tls_trust_store)",
            "Private Root",
        ),
        ("tls-name-mismatch", "Hostname mismatch", "not issued for rinis.example", "subjectAltName"),
        (
            "tls-client-refused",
            "TLSV1_ALERT_UNKNOWN_CA",
            "refused our client certificate",
            "ClientCertificateRef",
        ),
        ("tls-server-not-in-cpa", "not the one the CPA names", "ServerCertificateRef", "updated CPA"),
        ("tls", "WRONG_VERSION_NUMBER", "TLS handshake", "TLS 1.2 or 1.3"),
        ("timeout", "no answer", "No answer from rinis.example:8443", "http_timeout"),
        ("http", "closed", "broke off", "Retry"),
        (None, "odd", "broke off", "Retry"),
    ],
)
def test_transport_failures(layer: str | None, message: str, summary_part: str, advice_part: str) -> None:
    result = diagnose(TransportError(message, retryable=True, layer=layer), endpoint=URL)
    assert result.ok is False
    assert result.layer == (layer or "http")
    assert summary_part in result.summary
    assert advice_part in result.advice
    assert result.detail == message


def test_default_port_and_missing_endpoint_read_naturally() -> None:
    assert (
        "rinis.example:443"
        in diagnose(
            TransportError("x", retryable=True, layer="connect"), endpoint="https://rinis.example/ebms"
        ).summary
    )
    assert "the partner's host" in diagnose(TransportError("x", retryable=True, layer="dns")).summary


@pytest.mark.parametrize(
    ("status", "summary_part", "advice_part"),
    [
        (403, "our client certificate or its OIN is not accepted", "serialNumber"),
        (404, "wrong path", "endpoint URI"),
        (405, "does not accept POST", "endpoint URI"),
        (401, "HTTP authentication", "endpoint URI"),
        (413, "too large", "Grote Berichten"),
        (503, "down or in maintenance", "retried"),
        (502, "proxy or load balancer", "retried"),
        (500, "without saying why (HTTP 500, empty body)", "partner's log"),
        (507, "server failed (HTTP 507)", "retried"),
        (302, "redirects", "updated CPA"),
        (418, "not an ebMS answer", "endpoint URI"),
    ],
)
def test_http_statuses(status: int, summary_part: str, advice_part: str) -> None:
    result = diagnose(response(status))
    assert (result.layer, result.ok, result.http_status) == (Layer.HTTP, False, status)
    assert summary_part in result.summary
    assert advice_part in result.advice


def test_500_with_a_body_that_is_not_xml_is_an_http_failure() -> None:
    result = diagnose(response(500, b"<html>Internal error</html", "text/html"))
    assert result.layer is Layer.HTTP
    assert "HTTP 500" in result.summary


def test_soap_fault_cpa_not_found() -> None:
    result = diagnose(response(500, envelope(body=fault("CPA cpa-gemeente-rinis not found!"))))
    assert (result.layer, result.ok) == (Layer.SOAP, False)
    assert "CPA cpa-gemeente-rinis not found!" in result.summary
    assert "same CPAId" in result.advice


def test_other_soap_fault() -> None:
    result = diagnose(response(500, envelope(body=fault("Unable to process message! SOAPAction="))))
    assert result.layer is Layer.SOAP
    assert "SOAPAction=" in result.summary
    assert "faultstring" in result.advice


@pytest.mark.parametrize(
    ("code", "description", "advice_part"),
    [
        ("ValueNotRecognized", "Value not found.", "same CPA version"),
        ("Inconsistent", "Value not found.", "same CPA version"),
        ("SecurityFailure", "Invalid signature.", "certificates"),
        ("TimeToLiveExpired", "Expired.", "clock"),
        ("Unknown", "Something else.", "description says"),
    ],
)
def test_message_error(code: str, description: str, advice_part: str) -> None:
    body = envelope(message_header("MessageError") + error_list(code, description))
    result = diagnose(response(200, body), ping_message_id=PING_ID)
    assert (result.layer, result.ok, result.error_code) == (Layer.EBMS, False, code)
    assert f"{code} - {description}" in result.summary
    assert advice_part in result.advice


def test_pong_is_success_with_round_trip() -> None:
    result = diagnose(
        response(200, envelope(message_header("Pong")), elapsed=0.0456), ping_message_id=PING_ID
    )
    assert (result.layer, result.ok, result.round_trip_ms, result.http_status) == (Layer.OK, True, 46, 200)
    assert result.summary == "Pong received in 46 ms."


def test_pong_in_a_multipart_response_is_read() -> None:
    content_type, body = build_related(envelope(message_header("Pong")), [], start_id="soap-part@test")
    result = diagnose(response(200, body, content_type), ping_message_id=PING_ID)
    assert result.ok is True


def test_pong_for_another_ping_is_not_success() -> None:
    result = diagnose(response(200, envelope(message_header("Pong", ref="other@x"))), ping_message_id=PING_ID)
    assert (result.layer, result.ok) == (Layer.EBMS, False)
    assert "does not refer to our Ping" in result.summary


def test_accepted_ping_without_pong_means_asynchronous() -> None:
    result = diagnose(response(204))
    assert (result.layer, result.ok) == (Layer.EBMS, False)
    assert "no Pong" in result.summary
    assert "asynchronous" in result.advice or "separate request" in result.advice


def test_unexpected_ebms_answer() -> None:
    result = diagnose(response(200, envelope(message_header("StatusResponse"))))
    assert result.layer is Layer.EBMS
    assert "StatusResponse, not with a Pong" in result.summary


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Welcome</body></html",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>',
    ],
)
def test_unreadable_2xx_body(body: bytes) -> None:
    result = diagnose(response(200, body))
    assert (result.layer, result.ok) == (Layer.EBMS, False)
    assert "not with a readable SOAP envelope" in result.summary
    assert result.detail


def test_non_soap_xml_is_not_a_pong() -> None:
    result = diagnose(response(200, b"<pong/>"))
    assert (result.layer, result.ok) == (Layer.EBMS, False)


def test_read_envelope_takes_warnings_apart_from_errors() -> None:
    body = envelope(message_header("Pong") + error_list("Unknown", "just a note", severity="Warning"))
    seen = read_envelope("text/xml", body)
    assert seen.action == "Pong"
    assert seen.errors == (("Unknown", "Warning", "just a note"),)


def test_pong_with_warnings_only_is_still_success() -> None:
    body = envelope(message_header("Pong") + error_list("Unknown", "just a note", severity="Warning"))
    assert diagnose(response(200, body), ping_message_id=PING_ID).ok is True
