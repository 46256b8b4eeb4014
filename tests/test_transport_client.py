"""EbmsClient against real TLS servers on loopback: one test per failure layer (docs/sending.md).

Certificates are minted per test module with ``testing.pki``; the client context is the real one
from ``security.tls.client_context``. Servers listen on ephemeral ports. Two kinds of server:
aiohttp (asyncio TLS, which drops a connection on a refused client certificate without an alert)
and a blocking ``ssl`` socket server in a thread (which sends the TLS alert, like nginx or Java).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ggk_ebms.errors import TransportError
from ggk_ebms.security.tls import client_context
from ggk_ebms.testing import pki
from ggk_ebms.transport import client as client_module
from ggk_ebms.transport.client import STREAM_ABOVE, EbmsClient, PinningConnector, matches_cpa_certificate
from ggk_ebms.transport.result import Layer
from ggk_ebms.transport.retry import ResponseClass, classify_response

pytestmark = pytest.mark.slow

NOT_BEFORE = datetime.now(UTC) - timedelta(hours=1)
NOT_AFTER = NOT_BEFORE + timedelta(days=2)
ENVELOPE = b"<SOAP:Envelope xmlns:SOAP='http://schemas.xmlsoap.org/soap/envelope/'/>"


@dataclass(frozen=True)
class Pki:
    ca: pki.IssuedCertificate
    other_ca: pki.IssuedCertificate
    folder: Path

    def write(self, name: str, issued: pki.IssuedCertificate) -> tuple[Path, Path]:
        cert, key = self.folder / f"{name}.pem", self.folder / f"{name}-key.pem"
        cert.write_bytes(issued.certificate_pem())
        key.write_bytes(issued.private_key_pem())
        return cert, key

    def trust(self, issued: pki.IssuedCertificate) -> Path:
        path = self.folder / f"trust-{issued.certificate.serial_number}.pem"
        path.write_bytes(issued.certificate_pem())
        return path

    def server_cert(
        self, ca: pki.IssuedCertificate | None = None, **names: tuple[str, ...]
    ) -> pki.IssuedCertificate:
        return pki.issue_server_certificate(
            ca or self.ca, oin="00000099000001000000", not_before=NOT_BEFORE, not_after=NOT_AFTER, **names
        )

    def server_context(
        self, server: pki.IssuedCertificate, *, trust: pki.IssuedCertificate | None = None
    ) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(*self.write(f"server-{server.certificate.serial_number}", server))
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(self.trust(trust or self.ca))
        return context

    def client_context(self) -> ssl.SSLContext:
        client = pki.issue_client_certificate(
            self.ca,
            oin="00000099000003630000",
            common_name="gemeente TEST client",
            not_before=NOT_BEFORE,
            not_after=NOT_AFTER,
        )
        cert, key = self.write("client", client)
        return client_context(cert, key, self.trust(self.ca))


@pytest.fixture(scope="module")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = pki.create_ca("transport TEST CA", not_before=NOT_BEFORE, not_after=NOT_AFTER)
    other = pki.create_ca("transport TEST other CA", not_before=NOT_BEFORE, not_after=NOT_AFTER)
    return Pki(ca, other, tmp_path_factory.mktemp("transport-pki"))


@pytest.fixture(scope="module")
def server_cert(test_pki: Pki) -> pki.IssuedCertificate:
    return test_pki.server_cert()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[ssl.SSLContext | None, Handler], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start aiohttp servers on 127.0.0.1:<ephemeral>; yields a function returning the base URL."""
    runners: list[web.AppRunner] = []

    async def start(context: ssl.SSLContext | None, handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/ebms", handler)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"{'https' if context else 'http'}://localhost:{port}/ebms"

    yield start
    for runner in runners:
        await runner.cleanup()


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(
        status=200,
        body=body,
        content_type="text/xml",
        headers={"X-Soap-Action": request.headers.get("SOAPAction", "")},
    )


def status_handler(status: int, body: bytes = b"") -> Handler:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, body=body or None)

    return handler


async def post(client: EbmsClient, url: str, **kwargs: bytes | None) -> object:
    return await client.post(url, body=ENVELOPE, content_type="text/xml; charset=UTF-8", **kwargs)  # type: ignore[arg-type]


async def failure(client: EbmsClient, url: str, **kwargs: bytes | None) -> TransportError:
    with pytest.raises(TransportError) as caught:
        await post(client, url, **kwargs)
    return caught.value


async def test_healthy_mutual_tls_post_returns_status_body_and_peer_certificate(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve
) -> None:
    url = await serve(test_pki.server_context(server_cert), echo)
    async with EbmsClient(test_pki.client_context()) as client:
        result = await client.post(url, body=ENVELOPE, content_type="text/xml; charset=UTF-8")
    assert result.status == 200
    assert result.body == ENVELOPE
    assert result.content_type is not None
    assert result.content_type.startswith("text/xml")
    assert result.peer_cert_der == server_cert.der
    assert result.elapsed > 0


async def test_soapaction_header_carries_the_quotes(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve
) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers["SOAPAction"])
        return web.Response(status=204)

    url = await serve(test_pki.server_context(server_cert), handler)
    async with EbmsClient(test_pki.client_context()) as client:
        result = await client.post(url, body=ENVELOPE, content_type="text/xml; charset=UTF-8")
    assert result.status == 204
    assert seen == ['"ebXML"']  # KVS5: quotes included


async def test_connections_are_kept_alive_per_endpoint(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve
) -> None:
    peers: list[object] = []

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return web.Response(status=204)

    url = await serve(test_pki.server_context(server_cert), handler)
    async with EbmsClient(test_pki.client_context()) as client:
        for _ in range(3):
            await client.post(url, body=ENVELOPE, content_type="text/xml")
    assert len(peers) == 3
    assert len(set(peers)) == 1  # one TCP connection served all three requests


async def test_expected_cpa_certificate_accepted_when_it_is_the_presented_one(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve
) -> None:
    url = await serve(test_pki.server_context(server_cert), echo)
    async with EbmsClient(test_pki.client_context()) as client:
        result = await client.post(
            url, body=ENVELOPE, content_type="text/xml", expected_server_cert_der=server_cert.der
        )
    assert result.status == 200


async def test_server_certificate_other_than_the_cpa_names_is_refused_before_sending(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve
) -> None:
    received: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(status=204)

    url = await serve(test_pki.server_context(server_cert), handler)
    cpa_cert = test_pki.server_cert()  # valid, same CA and names, another key
    async with EbmsClient(test_pki.client_context()) as client:
        error = await failure(client, url, expected_server_cert_der=cpa_cert.der)
    assert error.layer == Layer.TLS_SERVER_NOT_IN_CPA
    assert error.retryable is False
    assert "not the one the CPA names" in str(error)
    assert received == []  # checked when the connection came up: not a byte of the message left


def test_renewed_certificate_with_the_same_key_matches_the_cpa_certificate(test_pki: Pki) -> None:
    original = test_pki.server_cert()
    # A renewal as a CA issues it: same subject and key, new serial number and validity.
    renewed = (
        x509.CertificateBuilder()
        .subject_name(original.certificate.subject)
        .issuer_name(test_pki.ca.certificate.subject)
        .public_key(original.private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER + timedelta(days=1))
        .sign(test_pki.ca.private_key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )
    assert renewed != original.der
    assert matches_cpa_certificate(renewed, original.der)
    assert not matches_cpa_certificate(test_pki.server_cert().der, original.der)
    assert not matches_cpa_certificate(None, original.der)
    assert not matches_cpa_certificate(b"not a certificate", original.der)


async def test_nothing_listening_is_the_connect_layer(test_pki: Pki) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: the connect is refused
        async with EbmsClient(test_pki.client_context()) as client:
            error = await failure(client, f"https://127.0.0.1:{port}/ebms")
    assert error.layer == Layer.CONNECT
    assert error.retryable is True
    assert "nothing listens" in str(error)


async def test_unknown_host_is_the_dns_layer(test_pki: Pki) -> None:
    # RFC 6761 §6.4: names under .invalid never resolve.
    async with EbmsClient(test_pki.client_context(), connect_timeout=5, timeout=10) as client:
        error = await failure(client, "https://partner.ggk-ebms-test.invalid/ebms")
    assert error.layer in (Layer.DNS, Layer.TIMEOUT)  # a resolver without network may time out
    assert error.retryable is True


async def test_server_certificate_from_an_untrusted_ca(test_pki: Pki, serve: Serve) -> None:
    foreign = test_pki.server_cert(test_pki.other_ca)
    url = await serve(test_pki.server_context(foreign), echo)
    async with EbmsClient(test_pki.client_context()) as client:
        error = await failure(client, url)
    assert error.layer == Layer.TLS_SERVER_UNTRUSTED
    assert error.retryable is True


async def test_server_certificate_for_another_host_name(test_pki: Pki, serve: Serve) -> None:
    elsewhere = test_pki.server_cert(dns_names=("rinis.example",), ip_addresses=())
    url = await serve(test_pki.server_context(elsewhere), echo)
    async with EbmsClient(test_pki.client_context()) as client:
        error = await failure(client, url)
    assert error.layer == Layer.TLS_NAME_MISMATCH
    assert "localhost" in str(error)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_client_certificate_refused_by_a_server_that_drops_the_connection(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve, version: ssl.TLSVersion
) -> None:
    context = test_pki.server_context(server_cert, trust=test_pki.other_ca)  # our CA is unknown there
    context.maximum_version = version
    url = await serve(context, echo)
    async with EbmsClient(test_pki.client_context()) as client:
        error = await failure(client, url)
    assert error.layer == Layer.TLS_CLIENT_REFUSED, str(error)


@contextmanager
def alerting_server(context: ssl.SSLContext) -> Iterator[int]:
    """A blocking TLS server in a thread: OpenSSL sends the TLS alert when it refuses a client."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve_once() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            except (ssl.SSLError, OSError):
                # The handshake failed on purpose and the alert has gone out. Close the way nginx
                # does (lingering close): stop sending, drain what the client still sends, so the
                # kernel sends FIN rather than a reset that could overtake the alert.
                with suppress(OSError):
                    connection.shutdown(socket.SHUT_WR)
                    connection.settimeout(2)
                    while connection.recv(65536):
                        pass

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("version", "ours_sent"),
    [
        (ssl.TLSVersion.TLSv1_2, True),  # alert unknown_ca inside the handshake
        (ssl.TLSVersion.TLSv1_3, True),  # alert unknown_ca on the first read after the handshake
        (ssl.TLSVersion.TLSv1_3, False),  # alert certificate_required
    ],
)
async def test_client_certificate_refused_with_a_tls_alert(
    test_pki: Pki, server_cert: pki.IssuedCertificate, version: ssl.TLSVersion, ours_sent: bool
) -> None:
    context = test_pki.server_context(server_cert, trust=test_pki.other_ca)
    context.maximum_version = version
    if ours_sent:
        client_ssl = test_pki.client_context()
    else:
        client_ssl = ssl.create_default_context(cafile=str(test_pki.trust(test_pki.ca)))
    with alerting_server(context) as port:
        async with EbmsClient(client_ssl) as client:
            error = await failure(client, f"https://localhost:{port}/ebms")
    assert error.layer == Layer.TLS_CLIENT_REFUSED, str(error)
    if version is ssl.TLSVersion.TLSv1_2:
        # Inside the handshake the alert always arrives. After a TLS 1.3 handshake the connection
        # close can overtake it on a busy machine; the layer is the same either way.
        assert "ALERT_UNKNOWN_CA" in str(error)


@pytest.mark.parametrize("status", [503, 500, 404, 408, 429])
async def test_http_error_statuses_come_back_as_results(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve, status: int
) -> None:
    url = await serve(test_pki.server_context(server_cert), status_handler(status))
    async with EbmsClient(test_pki.client_context()) as client:
        result = await client.post(url, body=ENVELOPE, content_type="text/xml")
    assert result.status == status
    expected = ResponseClass.FAILED if status == 404 else ResponseClass.RETRY
    assert classify_response(result.status, reliable=True, body_is_envelope=False) is expected


async def test_redirects_are_not_followed(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve
) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        raise web.HTTPFound("https://elsewhere.invalid/ebms")

    url = await serve(test_pki.server_context(server_cert), handler)
    async with EbmsClient(test_pki.client_context()) as client:
        result = await client.post(url, body=ENVELOPE, content_type="text/xml")
    assert result.status == 302
    assert classify_response(302, reliable=True, body_is_envelope=False) is ResponseClass.FAILED


async def test_slow_server_is_the_timeout_layer(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve
) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        await release.wait()
        return web.Response(status=204)

    url = await serve(test_pki.server_context(server_cert), handler)
    try:
        async with EbmsClient(test_pki.client_context(), timeout=0.5) as client:
            error = await failure(client, url)
    finally:
        release.set()
    assert error.layer == Layer.TIMEOUT
    assert error.retryable is True


@pytest.mark.parametrize("chunked", [False, True])
async def test_response_over_the_body_cap_is_refused(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve, chunked: bool
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        if not chunked:
            return web.Response(status=200, body=b"x" * 5000)
        response = web.StreamResponse(status=200)
        response.enable_chunked_encoding()  # no Content-Length: the cap must count bytes
        await response.prepare(request)
        for _ in range(5):
            await response.write(b"x" * 1000)
        await response.write_eof()
        return response

    url = await serve(test_pki.server_context(server_cert), handler)
    async with EbmsClient(test_pki.client_context(), max_response_bytes=4096) as client:
        error = await failure(client, url)
        assert error.layer == Layer.HTTP
        assert error.retryable is False
        assert error.http_status == 200
        # The client stays usable after a refused response.
        small = await serve(test_pki.server_context(server_cert), status_handler(204))
        assert (await client.post(small, body=ENVELOPE, content_type="text/xml")).status == 204


async def test_plain_http_endpoint_is_refused_unless_allowed(test_pki: Pki, serve: Serve) -> None:
    url = await serve(None, status_handler(204))
    async with EbmsClient(test_pki.client_context()) as client:
        error = await failure(client, url)
    assert error.layer == Layer.CONNECT
    assert error.retryable is False  # TLS001: a CPA error, retrying cannot help
    async with EbmsClient(test_pki.client_context(), allow_plain_http=True) as client:
        assert (await client.post(url, body=ENVELOPE, content_type="text/xml")).status == 204


async def test_supplied_connector_is_used_and_closed(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve
) -> None:
    context = test_pki.client_context()
    url = await serve(test_pki.server_context(server_cert), status_handler(204))
    connector = PinningConnector(ssl=context, limit_per_host=1)
    client = EbmsClient(context, connector=connector)
    assert (await client.post(url, body=ENVELOPE, content_type="text/xml")).status == 204
    await client.close()
    await client.close()  # twice is fine
    assert connector.closed
    with pytest.raises(RuntimeError):
        await client.post(url, body=ENVELOPE, content_type="text/xml")


async def test_large_body_in_pieces_is_streamed_with_its_content_length(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve
) -> None:
    """A SwA body given as pieces arrives byte for byte, with Content-Length (not chunked)."""
    seen: list[tuple[str | None, str | None, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.content.read()  # past the app's 1 MiB client_max_size of read()
        seen.append((request.headers.get("Content-Length"), request.headers.get("Transfer-Encoding"), body))
        return web.Response(status=204)

    pieces = [b"--head\r\n", bytes(range(256)) * (100 * 1024), b"\r\n", b"x" * STREAM_ABOVE, b"--\r\n"]
    url = await serve(test_pki.server_context(server_cert), handler)
    async with EbmsClient(test_pki.client_context()) as client:
        result = await client.post(url, body=pieces, content_type="multipart/related; boundary=head")
        single = await client.post(url, body=b"y" * (STREAM_ABOVE + 1), content_type="text/xml")
    assert result.status == 204 and single.status == 204
    total = b"".join(pieces)
    assert seen[0] == (str(len(total)), None, total)
    assert seen[1] == (str(STREAM_ABOVE + 1), None, b"y" * (STREAM_ABOVE + 1))


async def test_small_body_in_pieces_goes_out_as_one_buffer(
    test_pki: Pki, server_cert: pki.IssuedCertificate, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SwA body of STREAM_ABOVE bytes or less is joined, not streamed slice by slice (each
    slice a write of its own through aiohttp and TLS); it arrives byte for byte all the same."""
    seen: list[tuple[str | None, str | None, bytes]] = []
    streamed: list[int] = []
    original = client_module._slices

    def counting(pieces: list[bytes]) -> Any:
        streamed.append(len(pieces))
        return original(pieces)

    monkeypatch.setattr(client_module, "_slices", counting)

    async def handler(request: web.Request) -> web.Response:
        body = await request.content.read()
        seen.append((request.headers.get("Content-Length"), request.headers.get("Transfer-Encoding"), body))
        return web.Response(status=204)

    small = [b"--head\r\n", b"<soap/>" * 300, b"\r\n--head--\r\n"]
    url = await serve(test_pki.server_context(server_cert), handler)
    async with EbmsClient(test_pki.client_context()) as client:
        result = await client.post(url, body=small, content_type="multipart/related; boundary=head")
    assert result.status == 204
    total = b"".join(small)
    assert seen == [(str(len(total)), None, total)]
    assert streamed == []
