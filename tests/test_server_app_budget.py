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
from ggk_ebms.server.app import INLINE_MAX_BYTES, Guards, Offload, create_app


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


class _Both:
    """A handler that can run on the loop (``handle_async``) or in a thread (``handle``)."""

    def __init__(self) -> None:
        self.paths: list[tuple[str, int, str]] = []

    def handle(self, request: InboundRequest) -> Reply:
        self.paths.append(("thread", len(request.body), threading.current_thread().name))
        return Reply.accepted()

    async def handle_async(self, request: InboundRequest, offload: Offload) -> Reply:
        self.paths.append(("loop", len(request.body), threading.current_thread().name))
        if request.body.startswith(b"<needs-db"):
            return await offload(lambda: self.handle(request))
        return Reply.accepted()


async def test_small_bodies_are_handled_on_the_loop_large_ones_in_a_thread() -> None:
    handler = _Both()
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="inbound-test")
    app = create_app(handler, path="/ebms", max_body_bytes=4 * INLINE_MAX_BYTES, executor=executor)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/ebms"
    small, large, needs_db = b"<x/>", b"<x>" + b"a" * INLINE_MAX_BYTES + b"</x>", b"<needs-db/>"
    try:
        async with aiohttp.ClientSession() as session:
            for body in (small, large, needs_db):
                async with session.post(url, data=body, headers={"SOAPAction": '"ebXML"'}) as response:
                    assert response.status == 204
    finally:
        await runner.cleanup()
        executor.shutdown(wait=True)
    loop_thread = threading.current_thread().name
    assert handler.paths == [
        ("loop", len(small), loop_thread),
        ("thread", len(large), handler.paths[1][2]),
        ("loop", len(needs_db), loop_thread),
        ("thread", len(needs_db), handler.paths[3][2]),
    ]
    assert handler.paths[1][2].startswith("inbound-test") and handler.paths[3][2].startswith("inbound-test")
