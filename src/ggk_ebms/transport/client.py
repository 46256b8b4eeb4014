"""The outbound HTTP client: POST an ebMS message to a partner over mutual TLS.

An adapter around ``aiohttp.ClientSession`` (architecture: adapters do the I/O, the core decides).
What it guarantees:

- mutual TLS with the context from ``security.tls.client_context``: the partner's chain and host
  name are verified and our client certificate is presented (Digikoppeling BEV ch. 3-5, "Outbound");
- when the CPA names the partner's server certificate (``ServerCertificateRef``), the certificate
  the partner presents must be that one (same DER) or carry the same public key (a renewed
  certificate for the same key). It is checked as soon as the connection is up, before a byte of
  the message is sent, on new and on pooled connections alike;
- ``SOAPAction: "ebXML"`` with the quotes (ebMS 2.0 §2.1, KVS ch. 5), no redirects (3xx is an error,
  KVS ch. 5 HTTP status handling), no proxy taken from the environment;
- keep-alive connections pooled per endpoint, a capped response body (responses to our POSTs are
  MSH signals, never business messages: KVS2 makes those asynchronous), and timeouts for the
  connection set-up (TCP + TLS) and for the whole exchange;
- every failure leaves as ``TransportError`` with a ``layer``; aiohttp exceptions never escape
  (``failures.translate``).

HTTP statuses are not judged here: any response comes back as an ``HttpResult`` and
``retry.classify_response`` applies the retry table.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from types import SimpleNamespace, TracebackType
from typing import Any, Final, Self

import aiohttp
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from yarl import URL

from ggk_ebms import __version__
from ggk_ebms.config import Settings
from ggk_ebms.errors import TransportError
from ggk_ebms.ns import SOAP_ACTION_EBXML
from ggk_ebms.transport.failures import translate
from ggk_ebms.transport.result import HttpResult, Layer

# Responses to our POSTs are Acknowledgment, MessageError, Pong or StatusResponse: a few KiB, a
# signed Ack with many references perhaps tens. 1 MiB leaves room and stops a runaway partner.
DEFAULT_MAX_RESPONSE_BYTES: Final = 1024 * 1024
DEFAULT_LIMIT_PER_HOST: Final = 8
KEEPALIVE_SECONDS: Final = 30.0
_CHUNK: Final = 64 * 1024
# Bodies above this go out as a stream of _CHUNK slices; below, one write is cheaper.
STREAM_ABOVE: Final = 1024 * 1024


async def _slices(pieces: Sequence[bytes]) -> AsyncIterator[memoryview]:
    """The pieces in _CHUNK slices, as views (no copies); aiohttp awaits the socket between them."""
    for piece in pieces:
        view = memoryview(piece)
        for start in range(0, len(view), _CHUNK):
            yield view[start : start + _CHUNK]


def public_key_der(cert_der: bytes) -> bytes | None:
    """SubjectPublicKeyInfo of a DER certificate, or None when it cannot be read."""
    try:
        certificate = x509.load_der_x509_certificate(cert_der)
    except ValueError:
        return None
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def matches_cpa_certificate(presented_der: bytes | None, expected_der: bytes) -> bool:
    """The partner presented the CPA's ServerCertificateRef certificate, or one with its public key.

    Same key is accepted because partners renew certificates on the same key pair before the CPA
    is reissued; a different key is a different server as far as the CPA is concerned.
    """
    if presented_der is None:
        return False
    if presented_der == expected_der:
        return True
    expected_key = public_key_der(expected_der)
    return expected_key is not None and public_key_der(presented_der) == expected_key


def _peer_certificate(transport: Any) -> bytes | None:
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    return ssl_object.getpeercert(binary_form=True)


@dataclass
class _Exchange:
    """One request in flight: what the CPA expects and what happened so far (failures.translate)."""

    expected_server_cert_der: bytes | None = None
    peer_cert_der: bytes | None = None
    fresh_connection: bool | None = None
    response_started: bool = False


# The request running in this task. A context variable, because aiohttp calls the connector from
# inside session.post() in the same task, and the CPA's expectation is per request, not per
# connector (two CPAs may name different certificates for one endpoint during a renewal).
_current: ContextVar[_Exchange | None] = ContextVar("ggk_ebms_outbound_exchange", default=None)


class PinningConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that holds each connection to the
    certificate the CPA names (Digikoppeling BEV ch. 3-5).

    Also the seam for tests and special set-ups: build one with any ``TCPConnector`` arguments (a
    custom resolver, a local address) and hand it to ``EbmsClient``.
    """

    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        connection = await super().connect(req, traces, timeout)
        exchange = _current.get()
        if exchange is None:
            return connection
        exchange.peer_cert_der = _peer_certificate(connection.transport)
        expected = exchange.expected_server_cert_der
        if expected is not None and not matches_cpa_certificate(exchange.peer_cert_der, expected):
            connection.close()  # never reuse it: it is not the partner the CPA names
            raise TransportError(
                f"server certificate is not the one the CPA names (endpoint {req.url.host}:{req.url.port})",
                retryable=False,
                layer=Layer.TLS_SERVER_NOT_IN_CPA,
            )
        return connection


async def _on_connection_created(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceConnectionCreateEndParams
) -> None:
    exchange = context.trace_request_ctx
    if isinstance(exchange, _Exchange):
        exchange.fresh_connection = True


async def _on_connection_reused(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceConnectionReuseconnParams
) -> None:
    exchange = context.trace_request_ctx
    if isinstance(exchange, _Exchange):
        exchange.fresh_connection = False


class EbmsClient:
    """POSTs ebMS messages to partner endpoints; one instance per process, shared by all sends.

    Use as ``async with EbmsClient(context) as client: await client.post(...)``, or call
    ``close()`` yourself. The session is opened on first use, inside the running event loop.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        connect_timeout: float = 10.0,
        timeout: float = 120.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        limit_per_host: int = DEFAULT_LIMIT_PER_HOST,
        connector: PinningConnector | None = None,
        allow_plain_http: bool = False,
    ) -> None:
        """``connector``: a ready ``PinningConnector`` (tests, special resolvers); it must have
        been built with ``ssl=ssl_context``. ``allow_plain_http``: accept ``http://`` endpoints,
        for interop tests against the reference samples only; Digikoppeling requires TLS (TLS001).
        """
        if connect_timeout <= 0 or timeout <= 0:
            raise ValueError("timeouts must be positive")
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be at least 1")
        self._ssl_context = ssl_context
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._limit_per_host = limit_per_host
        self._connector = connector
        self._allow_plain_http = allow_plain_http
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, ssl_context: ssl.SSLContext) -> EbmsClient:
        """A client with the timeouts of the settings (http_connect_timeout, http_timeout) and as
        many keep-alive connections per endpoint as the send worker has requests on the wire to
        one partner (send_max_in_flight_per_partner), so none waits for a connection inside its
        http_timeout."""
        return cls(
            ssl_context,
            connect_timeout=settings.http_connect_timeout,
            timeout=settings.http_timeout,
            limit_per_host=settings.send_max_in_flight_per_partner,
        )

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("EbmsClient is closed")
        if self._session is None:
            connector = self._connector or PinningConnector(
                ssl=self._ssl_context,
                limit_per_host=self._limit_per_host,
                keepalive_timeout=KEEPALIVE_SECONDS,
            )
            tracing = aiohttp.TraceConfig()
            tracing.on_connection_create_end.append(_on_connection_created)
            tracing.on_connection_reuseconn.append(_on_connection_reused)
            self._session = aiohttp.ClientSession(
                connector=connector,
                connector_owner=True,
                timeout=aiohttp.ClientTimeout(total=self._timeout, sock_connect=self._connect_timeout),
                trace_configs=[tracing],
                trust_env=False,
                headers={"User-Agent": f"ggk-ebms/{__version__}"},
            )
        return self._session

    async def post(
        self,
        url: str,
        *,
        body: bytes | Sequence[bytes],
        content_type: str,
        expected_server_cert_der: bytes | None = None,
    ) -> HttpResult:
        """POST ``body`` to ``url`` and return the response, whatever its status.

        ``body`` may come as pieces (a SwA message from ``mime.related.related_pieces``), joined
        when they are ``STREAM_ABOVE`` bytes or less; a larger body is streamed in 64 KiB slices
        with its Content-Length, so the TLS layer encrypts and sends as the socket drains instead of
        buffering the whole message (three copies of a 25 MB message in asyncio's SSL transport).

        ``expected_server_cert_der``: the CPA's ServerCertificateRef certificate for this endpoint;
        when given, a partner presenting another certificate (and another key) gets nothing.
        Raises ``TransportError`` (with ``layer``) when no complete response was obtained.
        """
        target = self._target(url)
        endpoint = f"{target.host}:{target.port}"
        session = self._open()
        exchange = _Exchange(expected_server_cert_der=expected_server_cert_der)
        token = _current.set(exchange)
        started = time.perf_counter()
        try:
            headers = {"Content-Type": content_type, "SOAPAction": SOAP_ACTION_EBXML}
            data: bytes | AsyncIterator[memoryview]
            if not isinstance(body, bytes) and sum(len(p) for p in body) <= STREAM_ABOVE:
                # A small SwA message goes out as one buffer: streamed, each piece was a write
                # of its own (headers, then every slice) through aiohttp and the TLS layer, a
                # tenth of the send worker's CPU time for a 2 KB message (docs/performance.md
                # "Outbound"). The copy is bounded by STREAM_ABOVE.
                body = b"".join(body)
            if isinstance(body, bytes) and len(body) <= STREAM_ABOVE:
                data = body
            else:
                pieces = [body] if isinstance(body, bytes) else list(body)
                headers["Content-Length"] = str(sum(len(p) for p in pieces))
                data = _slices(pieces)
            async with session.post(
                target,
                data=data,
                headers=headers,
                allow_redirects=False,
                trace_request_ctx=exchange,
            ) as response:
                exchange.response_started = True
                data = await self._read_capped(response, endpoint)
                return HttpResult(
                    status=response.status,
                    content_type=response.headers.get("Content-Type"),
                    body=data,
                    elapsed=time.perf_counter() - started,
                    peer_cert_der=exchange.peer_cert_der,
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise translate(
                exc,
                endpoint=endpoint,
                tls=target.scheme == "https",
                timeout=self._timeout,
                response_started=exchange.response_started,
                fresh_connection=exchange.fresh_connection,
            ) from exc
        finally:
            _current.reset(token)

    def _target(self, url: str) -> URL:
        try:
            target = URL(url)
        except (TypeError, ValueError):
            raise TransportError(
                f"endpoint URL {url!r} cannot be parsed", retryable=False, layer=Layer.CONNECT
            ) from None
        allowed = ("https", "http") if self._allow_plain_http else ("https",)
        if target.scheme not in allowed or not target.host:
            # TLS001: mutual TLS is mandatory, so an http:// endpoint is a CPA error, not a retry.
            raise TransportError(
                f"endpoint URL {url!r} is not an https URL with a host", retryable=False, layer=Layer.CONNECT
            )
        return target

    async def _read_capped(self, response: aiohttp.ClientResponse, endpoint: str) -> bytes:
        """Read the body, counting bytes as they come (also chunked and decompressed ones)."""
        limit = self._max_response_bytes
        announced = response.content_length
        if announced is not None and announced > limit:
            raise self._too_large(endpoint, response.status, f"announces {announced} bytes")
        chunks: list[bytes] = []
        total = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            total += len(chunk)
            if total > limit:
                raise self._too_large(endpoint, response.status, f"sent more than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, endpoint: str, status: int, what: str) -> TransportError:
        # Not retryable: a partner that answers a POST with megabytes will do so again.
        return TransportError(
            f"response from {endpoint} {what}, over the cap of {self._max_response_bytes} bytes",
            retryable=False,
            http_status=status,
            layer=Layer.HTTP,
        )

    async def close(self) -> None:
        """Close pooled connections. Safe to call twice."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None
        elif self._connector is not None:
            await self._connector.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
