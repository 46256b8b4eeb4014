"""Plain-words diagnosis of one outbound exchange, for the Ping connectivity check (docs/sending.md).

``diagnose`` takes what ``EbmsClient.post`` produced, a ``TransportError`` or an ``HttpResult``,
and says at which layer it went wrong, what that means and what to do, from DNS up to the ebMS
answer. Only a Pong that refers to our Ping counts as success (ebMS 2.0 §7-§8: the Ping is our
connectivity check; compliance tests begin with one).

Pure: the response body is read with the hardened parser (``ggk_ebms.xml.parse``) and never
copied into the texts, so nothing of a partner's message reaches a log or a terminal beyond the
SOAP faultstring and ebMS error description, which are protocol text about our own request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import urlsplit

from lxml import etree

from ggk_ebms import ns
from ggk_ebms.errors import GgkEbmsError, TransportError
from ggk_ebms.mime.related import split_body
from ggk_ebms.transport.result import HttpResult, Layer
from ggk_ebms.xml import parse

# Response envelopes are signals; the client caps them at 1 MiB already.
_MAX_ENVELOPE_BYTES: Final = 1024 * 1024
_TEXT_LIMIT: Final = 300


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on one Ping: ``ok`` only for a Pong; ``detail`` is the technical text."""

    layer: Layer
    ok: bool
    summary: str
    advice: str
    detail: str = ""
    http_status: int | None = None
    round_trip_ms: int | None = None
    error_code: str | None = None  # the ebMS errorCode of a MessageError


@dataclass(frozen=True)
class ResponseEnvelope:
    """What a response envelope holds, as far as the diagnosis needs it."""

    action: str | None  # eb:MessageHeader/eb:Action under the ebMS service, e.g. "Pong"
    ref_to_message_id: str | None
    fault_code: str | None
    fault_string: str | None
    errors: tuple[tuple[str, str, str], ...]  # (errorCode, severity, description) per eb:Error


def read_envelope(content_type: str | None, body: bytes) -> ResponseEnvelope:
    """Read the SOAP part of a response (text/xml or multipart/related). Raises GgkEbmsError."""
    soap = split_body(content_type or "text/xml", body).soap.data
    root = parse(soap, max_bytes=_MAX_ENVELOPE_BYTES, what="response envelope")
    if root.tag != etree.QName(ns.SOAP_ENV, "Envelope").text:
        return ResponseEnvelope(None, None, None, None, ())
    space = {"SOAP": ns.SOAP_ENV, "eb": ns.EB}
    fault = root.find("SOAP:Body/SOAP:Fault", space)
    errors = tuple(
        (
            error.get(f"{{{ns.EB}}}errorCode", ""),
            error.get(f"{{{ns.EB}}}severity", ""),
            _text(error.find("eb:Description", space)),
        )
        for error in root.iterfind("SOAP:Header/eb:ErrorList/eb:Error", space)
    )
    return ResponseEnvelope(
        action=_text(root.find("SOAP:Header/eb:MessageHeader/eb:Action", space)) or None,
        ref_to_message_id=_text(
            root.find("SOAP:Header/eb:MessageHeader/eb:MessageData/eb:RefToMessageId", space)
        )
        or None,
        fault_code=_text(fault.find("faultcode")) if fault is not None else None,
        fault_string=_text(fault.find("faultstring")) if fault is not None else None,
        errors=errors,
    )


def _text(element: etree._Element | None) -> str:
    if element is None or element.text is None:
        return ""
    return " ".join(element.text.split())[:_TEXT_LIMIT]


def diagnose(
    outcome: TransportError | HttpResult,
    *,
    endpoint: str | None = None,
    ping_message_id: str | None = None,
) -> Diagnosis:
    """Explain a Ping's outcome. ``endpoint``: the URL pinged (for host names in the texts);
    ``ping_message_id``: our Ping's MessageId, which the Pong's RefToMessageId must repeat."""
    if isinstance(outcome, TransportError):
        return _transport(outcome, _Where.of(endpoint))
    return _response(outcome, ping_message_id)


@dataclass(frozen=True)
class _Where:
    host: str
    port: str

    @classmethod
    def of(cls, endpoint: str | None) -> _Where:
        if not endpoint:
            return cls("the partner's host", "its port")
        try:
            parts = urlsplit(endpoint)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return cls(endpoint, "its port")
        return cls(parts.hostname or endpoint, str(port))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _transport(error: TransportError, where: _Where) -> Diagnosis:
    known = {member.value for member in Layer}
    layer = Layer(error.layer) if error.layer is not None and error.layer in known else Layer.HTTP
    summary, advice = _TRANSPORT_TEXTS.get(layer, _TRANSPORT_TEXTS[Layer.HTTP])
    return Diagnosis(
        layer=layer,
        ok=False,
        summary=summary.format(host=where.host, address=where.address),
        advice=advice.format(host=where.host, address=where.address),
        detail=str(error),
        http_status=error.http_status,
    )


_TRANSPORT_TEXTS: Final[dict[Layer, tuple[str, str]]] = {
    Layer.DNS: (
        "Host name {host} not found.",
        "Check the endpoint URI in the CPA (TransportReceiver/Endpoint) and this machine's DNS.",
    ),
    Layer.CONNECT: (
        "Cannot connect to {address}: nothing listens there, or the connection is blocked.",
        "Check that the partner's endpoint is up, the port in the CPA is right (Digikoppeling uses "
        "443) and no firewall blocks this machine's outgoing traffic.",
    ),
    Layer.TLS_SERVER_UNTRUSTED: (
        "The partner's server certificate does not chain to our trust store (tls_trust_store), "
        "or it is expired or not yet valid.",
        "Add the partner's CA chain (production: Staat der Nederlanden Private Root CA - G1 and its "
        "intermediates) to tls_trust_store, and check the certificate's validity dates.",
    ),
    Layer.TLS_NAME_MISMATCH: (
        "The partner's server certificate is not issued for {host}.",
        "The host in the CPA endpoint must be one of the certificate's names (subjectAltName). "
        "Use the host name the partner gave, not an IP address or an alias.",
    ),
    Layer.TLS_CLIENT_REFUSED: (
        "The partner refused our client certificate.",
        "Check that tls_client_cert is the certificate the CPA names (ClientCertificateRef), "
        "that it is valid and issued under a CA the partner trusts (PKIoverheid), and that the "
        "partner has loaded the same CPA.",
    ),
    Layer.TLS_SERVER_NOT_IN_CPA: (
        "The partner's server certificate is valid but not the one the CPA names "
        "(ServerCertificateRef), nor one with the same key.",
        "If the partner renewed its certificate with a new key, ask for an updated CPA; otherwise "
        "{host} may point to another server than the partner's.",
    ),
    Layer.TLS: (
        "The TLS handshake with {address} failed.",
        "Both sides need TLS 1.2 or 1.3 with an NCSC-approved cipher suite. In TLS 1.2 a "
        "'handshake failure' can also mean the partner wanted a client certificate we did not send.",
    ),
    Layer.TIMEOUT: (
        "No answer from {address} in time.",
        "The partner may be overloaded, or a firewall drops the traffic silently. The limits are "
        "http_connect_timeout and http_timeout.",
    ),
    Layer.HTTP: (
        "The HTTP exchange with {address} broke off or the answer was unusable.",
        "Retry later; if it persists, compare with the partner's server log.",
    ),
}

# What a status usually means when it answers an ebMS POST (ebMS
# 2.0 App. B.2, KVS ch. 4; Digikoppeling BEV ch. 3-5; ebms-core).
_STATUS_TEXTS: Final[dict[int, tuple[str, str]]] = {
    400: (
        "The partner could not read our request (HTTP 400).",
        "The SOAP or MIME structure was refused; compare our message with the partner's log.",
    ),
    401: (
        "The partner asks for HTTP authentication (HTTP 401), which Digikoppeling does not use (KVS5).",
        "This is probably not the partner's ebMS endpoint; check the endpoint URI in the CPA.",
    ),
    403: (
        "The partner refused us (HTTP 403): our client certificate or its OIN is not accepted for "
        "our party in the partner's CPA.",
        "Check that the partner loaded the same CPA, that tls_client_cert is the CPA's "
        "ClientCertificateRef and that its serialNumber carries our OIN.",
    ),
    404: (
        "Nothing at this URL on the partner's server (HTTP 404): wrong path.",
        "Check the path of the endpoint URI in the CPA (TransportReceiver/Endpoint).",
    ),
    405: (
        "The URL does not accept POST (HTTP 405): probably not an ebMS endpoint.",
        "Check the endpoint URI in the CPA.",
    ),
    408: (
        "The partner timed out waiting for our request (HTTP 408).",
        "Usually passes; messages are retried (KVS ch. 5 HTTP status handling).",
    ),
    413: (
        "The partner finds the message too large (HTTP 413).",
        "Agree on a size limit, or use Grote Berichten for large payloads.",
    ),
    415: (
        "The partner does not accept the Content-Type (HTTP 415).",
        "ebMS uses text/xml or multipart/related; compare with the partner's log.",
    ),
    429: (
        "The partner asks us to slow down (HTTP 429).",
        "Messages are retried per the CPA; lower the sending rate if it persists.",
    ),
    501: (
        "The partner does not implement this request (HTTP 501).",
        "This is probably not an ebMS endpoint; check the endpoint URI in the CPA.",
    ),
    502: (
        "A proxy or load balancer before the partner cannot reach it (HTTP 502).",
        "The partner's endpoint behind its gateway is down; retried; ask the partner if it persists.",
    ),
    503: (
        "The partner is down or in maintenance (HTTP 503).",
        "Messages are retried per the CPA (KVS5: 503 is recoverable); ask the partner if it persists.",
    ),
    504: (
        "A proxy or load balancer before the partner got no answer from it in time (HTTP 504).",
        "The partner's endpoint is slow or down; retried; ask the partner if it persists.",
    ),
}

# Advice per ebMS errorCode of a MessageError answering our Ping (ebMS 2.0 §4.2; docs/ebms.md catalogue).
_ERROR_CODE_ADVICE: Final[dict[str, str]] = {
    "ValueNotRecognized": "The partner's CPA does not match ours (CPAId, PartyIds, roles, service or "
    "action); make sure both sides loaded the same CPA version.",
    "Inconsistent": "The partner's CPA or ebMS settings differ from ours (PartyIds, SyncReply, "
    "AckRequested); make sure both sides loaded the same CPA version.",
    "NotSupported": "The partner does not support something our Ping used; compare the CPAs.",
    "SecurityFailure": "A signature or certificate check failed at the partner; compare the "
    "certificates in both CPAs.",
    "TimeToLiveExpired": "The partner thinks our message expired; check this machine's clock.",
    "DeliveryFailure": "The partner could not deliver it onwards; ask the partner.",
}


def _response(result: HttpResult, ping_message_id: str | None) -> Diagnosis:
    round_trip = round(result.elapsed * 1000)
    verdict = _verdict(result, ping_message_id, round_trip)
    return replace(verdict, http_status=result.status, round_trip_ms=round_trip)


def _verdict(result: HttpResult, ping_message_id: str | None, round_trip: int) -> Diagnosis:
    status = result.status
    envelope: ResponseEnvelope | None = None
    unreadable = ""
    if result.body.strip():
        try:
            envelope = read_envelope(result.content_type, result.body)
        except GgkEbmsError as exc:
            unreadable = str(exc)
    if envelope is not None and envelope.fault_string is not None:
        fault = envelope.fault_string or "(no faultstring)"
        advice = (
            "The partner does not know this CPA: have it import the same CPA (same CPAId)."
            if "cpa" in fault.lower() and "not found" in fault.lower()
            else "The partner refused the request as a whole; the faultstring says why."
        )
        return Diagnosis(
            Layer.SOAP,
            False,
            f"The partner answered with a SOAP Fault ({envelope.fault_code or 'no faultcode'}): {fault}",
            advice,
            detail=f"HTTP {status}",
        )
    if not 200 <= status <= 299:
        return _status(status, bool(result.body.strip()), unreadable)
    if envelope is None:
        if unreadable:
            return Diagnosis(
                Layer.EBMS,
                False,
                "The partner answered, but not with a readable SOAP envelope.",
                "Compare with the partner's log; the endpoint may not be an ebMS endpoint.",
                detail=unreadable,
            )
        return Diagnosis(
            Layer.EBMS,
            False,
            f"The partner accepted the Ping (HTTP {status}) but sent no Pong in the response.",
            "Its CPA channel answers asynchronously (syncReplyMode none): the Pong, if any, arrives "
            "as a separate request to our endpoint. Pings are only answered in the response when "
            "the channel is synchronous.",
        )
    return _signal(envelope, ping_message_id, round_trip)


def _status(status: int, has_body: bool, unreadable: str) -> Diagnosis:
    if status in _STATUS_TEXTS:
        summary, advice = _STATUS_TEXTS[status]
    elif status == 500 and not has_body:
        summary = "The partner failed on our request without saying why (HTTP 500, empty body)."
        advice = (
            "The ebMS reference answers so for a header that fails its schema, XML it refuses or an "
            "internal error; compare the CPAs and ask for the partner's log."
        )
    elif 300 <= status <= 399:
        summary = f"The partner redirects elsewhere (HTTP {status}); redirects are not followed."
        advice = "The endpoint moved: ask for an updated CPA with the new endpoint URI."
    elif 500 <= status <= 599:
        summary = f"The partner's server failed (HTTP {status})."
        advice = "Messages are retried per the CPA; ask the partner if it persists."
    else:
        summary = f"The partner answered HTTP {status}, which is not an ebMS answer."
        advice = "Check the endpoint URI in the CPA and compare with the partner's log."
    return Diagnosis(
        Layer.HTTP,
        False,
        summary,
        advice,
        detail=unreadable,
    )


def _signal(envelope: ResponseEnvelope, ping_message_id: str | None, round_trip: int) -> Diagnosis:
    # An ErrorList of warnings only does not fail the exchange (ebMS 2.0 §4.2.3.2: highestSeverity).
    serious = [error for error in envelope.errors if error[1] != "Warning"]
    if envelope.action == "MessageError" or serious:
        code, _severity, description = (serious or list(envelope.errors) or [("", "", "")])[0]
        return Diagnosis(
            Layer.EBMS,
            False,
            f"The partner answered with an ebMS MessageError: {code or 'no code'}"
            + (f" - {description}" if description else ""),
            _ERROR_CODE_ADVICE.get(code, "The description says what the partner objects to."),
            error_code=code or None,
        )
    if envelope.action == "Pong":
        if ping_message_id is not None and envelope.ref_to_message_id != ping_message_id:
            return Diagnosis(
                Layer.EBMS,
                False,
                "The partner answered with a Pong that does not refer to our Ping.",
                "The RefToMessageId must repeat our Ping's MessageId (ebMS 2.0 §7-§8); tell the partner.",
                detail=f"RefToMessageId {envelope.ref_to_message_id or '(none)'}",
            )
        return Diagnosis(
            Layer.OK,
            True,
            f"Pong received in {round_trip} ms.",
            "The connection works: DNS, TLS in both directions, HTTP and the partner's CPA.",
        )
    return Diagnosis(
        Layer.EBMS,
        False,
        f"The partner answered the Ping with {envelope.action or 'no ebMS message'}, not with a Pong.",
        "Compare with the partner's log; the endpoint may not be the partner's ebMS endpoint.",
    )
