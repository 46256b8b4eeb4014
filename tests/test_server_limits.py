"""Connection limits and timeouts of the real endpoint (server/limits.py, server/listener.py, app.py).

Each test sets a short limit and waits, with a generous deadline, for the server to act: the
assertions are about what happened (closed, refused), never about how long it took.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from pathlib import Path
from typing import Any

import pytest

from ggk_ebms.config import Settings
from ggk_ebms.store.messages import MessageStore
from tests import peer
from tests.endpoint import CPA_RM, GEMEENTE, RINIS, cpa_folder, party_settings, running, url
from tests.limits_support import closed_by_server, stranger_ssl, tls_connect


def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    db_url = f"sqlite:///{tmp_path / 'limits.db'}"
    return party_settings("gemeente", tmp_path, db_url, cpa_folder(tmp_path), **changes)


async def ping_ok(endpoint_url: str) -> None:
    answer = await peer.post(endpoint_url, peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True))
    assert answer.status == 200 and b"Pong" in answer.body


async def test_idle_tls_connection_is_closed(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, header_timeout=0.5)) as endpoint:
        reader, writer = await tls_connect(endpoint.port)
        assert await closed_by_server(reader) == b""
        writer.close()
        await ping_ok(url(endpoint))


async def test_slow_loris_headers_are_cut_off(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, header_timeout=0.5)) as endpoint:
        reader, writer = await tls_connect(endpoint.port)
        writer.write(b"POST /ebms HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        await writer.drain()
        sent = 0

        async def trickle() -> None:
            nonlocal sent
            while True:  # one byte now and then: never completes the headers
                await asyncio.sleep(0.05)
                writer.write(b"a")
                sent += 1

        task = asyncio.create_task(trickle())
        try:
            assert await closed_by_server(reader) == b""
        finally:
            task.cancel()
            writer.close()
        await ping_ok(url(endpoint))


async def test_plain_tcp_without_handshake_is_closed(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, tls_handshake_timeout=0.5)) as endpoint:
        reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
        assert await closed_by_server(reader) == b""
        writer.close()
        await asyncio.wait_for(_until(lambda: endpoint.listener.open_connections == 0), 30)


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.02)


def _ping_request(*, close: bool = True) -> bytes:
    """A raw HTTP/1.1 ebMS Ping; ``close`` False keeps the connection open after the answer."""
    body = peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True)
    connection = b"Connection: close\r\n" if close else b""
    return (
        b'POST /ebms HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\nSOAPAction: "ebXML"\r\n'
        + f"Content-Length: {len(body)}\r\n".encode()
        + connection
        + b"\r\n"
        + body
    )


async def test_connection_over_the_per_certificate_cap_waits_for_a_free_one(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_connections_per_client=2, header_timeout=60.0)
    async with running(settings) as endpoint:
        first = await tls_connect(endpoint.port)
        second = await tls_connect(endpoint.port)
        await asyncio.wait_for(_until(lambda: sum(endpoint.registry.clients().values()) == 2), 30)
        third_reader, third_writer = await tls_connect(endpoint.port)
        third_writer.write(_ping_request())
        await third_writer.drain()
        await asyncio.wait_for(_until(lambda: endpoint.registry.waiting() == 1), 30)
        assert list(endpoint.registry.clients().values()) == [2]  # the third is not served yet
        first[1].close()  # one of the certificate's connections closes: the third gets its place
        answer = await closed_by_server(third_reader)
        assert answer.startswith(b"HTTP/1.1 200") and b"Pong" in answer
        for writer in (second[1], third_writer):
            writer.close()
        await asyncio.wait_for(_until(lambda: not endpoint.registry.clients()), 30)


async def test_connection_over_the_per_certificate_cap_is_closed_when_none_frees_up(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_connections_per_client=2, header_timeout=0.5, body_timeout=60.0)
    async with running(settings) as endpoint:
        holders = [await tls_connect(endpoint.port) for _ in range(2)]
        for _, writer in holders:  # mid-request (a body that does not come): no header deadline
            writer.write(b"POST /ebms HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n")
            await writer.drain()
        await asyncio.wait_for(_until(lambda: sum(endpoint.registry.clients().values()) == 2), 30)
        third_reader, third_writer = await tls_connect(endpoint.port)
        third_writer.write(_ping_request())
        assert await closed_by_server(third_reader) == b""
        third_writer.close()
        assert list(endpoint.registry.clients().values()) == [2]
        for _, writer in holders:
            writer.close()


async def test_total_connections_are_capped_and_freed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_connections=2, tls_handshake_timeout=60.0)
    async with running(settings) as endpoint:
        blockers = [socket.create_connection(("127.0.0.1", endpoint.port)) for _ in range(2)]
        await asyncio.wait_for(_until(lambda: endpoint.listener.open_connections == 2), 30)
        pending = asyncio.create_task(ping_ok(url(endpoint)))
        for _ in range(20):
            await asyncio.sleep(0)
            assert endpoint.listener.open_connections <= 2
        assert not pending.done()
        blockers[0].close()  # a slot frees up: the waiting client is served
        await asyncio.wait_for(pending, 30)
        blockers[1].close()


async def test_slow_body_gets_408(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, body_timeout=0.5)) as endpoint:
        reader, writer = await tls_connect(endpoint.port)
        writer.write(
            b'POST /ebms HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\nSOAPAction: "ebXML"\r\n'
            b"Content-Length: 100000\r\n\r\n<SOAP:Envelope"
        )
        await writer.drain()
        answer = await closed_by_server(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")


async def test_compressed_body_is_refused_before_decompression(tmp_path: Path) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    async with running(make_settings(tmp_path)) as endpoint:
        answer = await peer.post(url(endpoint), bomb, extra_headers={"Content-Encoding": "gzip"})
        assert answer.status == 415
        assert MessageStore(endpoint.database).list() == []
        await ping_ok(url(endpoint))


async def test_unknown_party_is_refused_before_its_body_is_parsed(tmp_path: Path) -> None:
    # 30 MB of near-delimiters cost seconds of MIME scanning once; now not a byte is looked at.
    body = b"--b1\r\nContent-Type: text/xml\r\n\r\n" + b"\n--bX" * (6 * 1024 * 1024)
    settings = make_settings(tmp_path, max_body_bytes=40 * 1024 * 1024)
    async with running(settings) as endpoint:
        answer = await peer.post(
            url(endpoint),
            body,
            content_type='multipart/related; type="text/xml"; boundary="b1"',
            ssl_context=stranger_ssl(tmp_path / "stranger"),
        )
        assert answer.status == 403
        assert b"belongs to no party of any of our CPAs" in answer.body
        assert MessageStore(endpoint.database).list() == []
        await ping_ok(url(endpoint))


@pytest.mark.parametrize("name", ["max_connections", "header_timeout", "request_timeout"])
def test_limits_must_be_positive(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ggk_ebms.config import load
    from ggk_ebms.errors import ConfigError

    with pytest.raises(ConfigError, match=name):
        load(environ={f"GGK_EBMS_{name.upper()}": "0"})


async def test_idle_keep_alive_connection_is_closed_after_a_response(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, keepalive_timeout=0.5, header_timeout=60.0)) as endpoint:
        reader, writer = await tls_connect(endpoint.port)
        writer.write(_ping_request(close=False))
        await writer.drain()
        answer = await closed_by_server(reader)  # the answer, then the close when idle
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200") and b"Pong" in answer


async def test_bodies_above_the_threshold_are_spooled(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    async with running(make_settings(tmp_path, spool_threshold_bytes=256, spool_dir=spool)) as endpoint:
        await ping_ok(url(endpoint))
        assert list(spool.iterdir()) == []  # temporary files are gone once the request is done


async def test_pipelined_partial_request_is_cut_off(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, keepalive_timeout=0.5, header_timeout=0.5)) as endpoint:
        reader, writer = await tls_connect(endpoint.port)
        writer.write(_ping_request(close=False) + b"POST /ebms HTTP/1.1\r\nHost: localhost\r\nX-Never-Ends: ")
        await writer.drain()
        answer = await closed_by_server(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200") and answer.count(b"HTTP/1.1") == 1
