"""The request-level guards of server/app.py over real HTTP (loopback, no TLS) with a handler
that blocks until released: request_timeout gives 503, the per-identity budget holds the rest."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest
from aiohttp import web

from ggk_ebms.pipeline.reply import InboundRequest, Reply
from ggk_ebms.server.app import Guards, create_app


class Blocking:
    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self.calls = 0

    def handle(self, request: InboundRequest) -> Reply:
        self.calls += 1
        self.entered.release()
        self.release.wait(60)
        return Reply.accepted()


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Blocking]]:
    handler = Blocking()
    executor = ThreadPoolExecutor(max_workers=4)
    app = create_app(
        handler,
        path="/ebms",
        max_body_bytes=1024 * 1024,
        executor=executor,
        guards=Guards(max_parallel_per_client=1, request_timeout=1.0),
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/ebms", handler
    finally:
        handler.release.set()
        await runner.cleanup()
        executor.shutdown(wait=True)


async def _post(session: aiohttp.ClientSession, url: str) -> int:
    async with session.post(url, data=b"<x/>", headers={"SOAPAction": '"ebXML"'}) as response:
        await response.read()
        return response.status


async def test_processing_past_request_timeout_gives_503(served: tuple[str, Blocking]) -> None:
    url, handler = served
    async with aiohttp.ClientSession() as session:
        assert await _post(session, url) == 503
    handler.release.set()


async def test_one_turn_per_identity_the_next_waits_then_503(served: tuple[str, Blocking]) -> None:
    url, handler = served
    async with aiohttp.ClientSession() as session:
        first = asyncio.create_task(_post(session, url))
        await asyncio.to_thread(handler.entered.acquire)
        second = await _post(session, url)  # same identity (no certificate: the address)
        assert second == 503
        assert handler.calls == 1  # the second never reached the handler
        handler.release.set()
        assert await first == 503  # the first one ran past request_timeout too


async def test_gzip_is_refused_without_reaching_the_handler(served: tuple[str, Blocking]) -> None:
    url, handler = served
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=b"x", headers={"Content-Encoding": "gzip", "SOAPAction": '"ebXML"'}
        ) as response,
    ):
        assert response.status == 415
    assert handler.calls == 0
