"""Hostile input against the real endpoint: each gets a clear refusal and the server keeps serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ggk_ebms.store.messages import MessageStore
from tests import peer
from tests.endpoint import CPA_RM, GEMEENTE, RINIS, cpa_folder, party_settings, running, url

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<SOAP:Envelope xmlns:SOAP="http://schemas.xmlsoap.org/soap/envelope/"><SOAP:Body>&lol3;</SOAP:Body></SOAP:Envelope>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>
<SOAP:Envelope xmlns:SOAP="http://schemas.xmlsoap.org/soap/envelope/"><SOAP:Body>&xxe;</SOAP:Body></SOAP:Envelope>"""


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    db_url = f"sqlite:///{tmp_path / 'hostile.db'}"
    return party_settings("gemeente", tmp_path, db_url, cpa_folder(tmp_path), max_body_bytes=2 * 1024 * 1024)


async def _still_serving(endpoint_url: str) -> None:
    answer = await peer.post(endpoint_url, peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True))
    assert answer.status == 200 and b"Pong" in answer.body


@pytest.mark.parametrize(
    ("name", "content_type", "body"),
    [
        ("billion laughs", "text/xml", BILLION_LAUGHS),
        ("external entity", "text/xml", XXE),
        ("binary garbage", "application/octet-stream", bytes(range(256)) * 40),
        ("garbage as xml", "text/xml", b"\x00\xff\xfe garbage <<<"),
        (
            "truncated MIME",
            'multipart/related; type="text/xml"; boundary="b1"',
            b"--b1\r\nContent-Type: text/xml\r\n\r\n<a/>",
        ),
        (
            "wrong boundary",
            'multipart/related; type="text/xml"; boundary="expected"',
            b"--other\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n--other--\r\n",
        ),
        (
            "missing start part",
            'multipart/related; type="text/xml"; boundary="b1"; start="<nowhere>"',
            b"--b1\r\nContent-Type: text/xml\r\nContent-ID: <soap>\r\n\r\n<a/>\r\n--b1--\r\n",
        ),
        ("empty body", "text/xml", b""),
    ],
)
async def test_hostile_body_is_refused(settings, name: str, content_type: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    async with running(settings) as endpoint:
        answer = await peer.post(url(endpoint), body, content_type=content_type)
        assert answer.status == 500, f"{name}: {answer.status} {answer.text[:200]}"
        assert b"/etc/hostname" not in answer.body and b"lollol" not in answer.body
        assert MessageStore(endpoint.database).list() == []
        await _still_serving(url(endpoint))


async def test_oversized_body_is_refused_with_413(settings) -> None:  # type: ignore[no-untyped-def]
    body = b"<x>" + b"a" * (3 * 1024 * 1024) + b"</x>"
    async with running(settings) as endpoint:
        answer = await peer.post(url(endpoint), body)
        assert answer.status == 413
        await _still_serving(url(endpoint))


async def test_oversized_chunked_body_is_refused(settings) -> None:  # type: ignore[no-untyped-def]
    """No Content-Length: the cap must hold while streaming (docs/rules.md, SEC26 F7)."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):  # 100 x 1 MiB = 100 MiB offered
            yield b"a" * (1024 * 1024)

    async with running(settings) as endpoint:
        status = None
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    url(endpoint),
                    data=chunks(),
                    headers={"Content-Type": "text/xml", "SOAPAction": '"ebXML"'},
                    ssl=peer.client_ssl(),
                ) as response,
            ):
                status = response.status
        except (aiohttp.ClientError, ConnectionError):
            status = None  # the server may close the connection while we are still sending
        assert status in (413, None)
        await _still_serving(url(endpoint))


async def test_get_is_not_allowed(settings) -> None:  # type: ignore[no-untyped-def]
    async with (
        running(settings) as endpoint,
        aiohttp.ClientSession() as session,
        session.get(url(endpoint), ssl=peer.client_ssl()) as response,
    ):
        assert response.status == 405
