"""What one outbound HTTP exchange produced, as plain values shared by the client, retry and diagnosis.

Kept apart from ``client`` so the pure modules (retry decisions, diagnosis) never import aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Layer(StrEnum):
    """Where an outbound exchange failed, from the bottom of the stack up.

    The transport values are what ``TransportError.layer`` carries; ``SOAP``, ``EBMS`` and ``OK``
    are only used by the diagnosis of a response that did arrive.
    """

    DNS = "dns"
    CONNECT = "connect"
    TLS_SERVER_UNTRUSTED = "tls-server-untrusted"
    TLS_NAME_MISMATCH = "tls-name-mismatch"
    TLS_CLIENT_REFUSED = "tls-client-refused"
    # Digikoppeling BEV ch. 3-5 "verify the partner's server certificate against the CPA": chain and name were
    # fine, but it is not the ServerCertificateRef certificate of the CPA.
    TLS_SERVER_NOT_IN_CPA = "tls-server-not-in-cpa"
    TLS = "tls"
    TIMEOUT = "timeout"
    HTTP = "http"
    SOAP = "soap"
    EBMS = "ebms"
    OK = "ok"


# Failures where no byte of the request can have reached the partner's ebMS handler: a retry can
# never duplicate a message, so even best-effort (BE) may try again at once (see retry.py).
NOTHING_SENT_LAYERS = frozenset(
    {
        Layer.DNS,
        Layer.CONNECT,
        Layer.TLS_SERVER_UNTRUSTED,
        Layer.TLS_NAME_MISMATCH,
        Layer.TLS_CLIENT_REFUSED,
        Layer.TLS_SERVER_NOT_IN_CPA,
        Layer.TLS,
    }
)


@dataclass(frozen=True)
class HttpResult:
    """An HTTP response, whatever its status: the retry table decides what a status means.

    ``elapsed`` is seconds from the start of the request to the last body byte (the Ping round
    trip); ``peer_cert_der`` is the partner's TLS server certificate, DER, when TLS was used.
    """

    status: int
    content_type: str | None
    body: bytes
    elapsed: float
    peer_cert_der: bytes | None
