"""A real HTTP target on loopback for delivery tests: an aiohttp application in its own thread.

The delivery worker posts SOAP to a domain application (docs/delivery.md, "http" targets); the
tests stand one up on a free port and say per subclass how it answers ``POST /ggk``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from aiohttp import web

from tests.process import free_port

# The StUF Bv03 (acknowledgement) a domain application answers a Di01 with, in a SOAP body.
BV03_SOAP = (
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    '<StUF:Bv03Bericht xmlns:StUF="http://www.egem.nl/StUF/StUF0301"/></s:Body></s:Envelope>'
)


class LoopbackTarget:
    """``POST /ggk`` on 127.0.0.1 goes to ``handle``; use as a context manager."""

    # aiohttp's default request limit (1 MiB) unless a subclass takes larger bodies.
    client_max_size = 1024**2

    def __init__(self) -> None:
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def handle(self, request: web.Request) -> web.Response:
        raise NotImplementedError("a subclass says how the target answers")

    def prepare(self) -> None:
        """Runs in the server thread with its event loop set, before serving (asyncio objects)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ggk"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self.prepare()
        app = web.Application(client_max_size=self.client_max_size)
        app.router.add_post("/ggk", self.handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._started.set()
        self._loop.run_forever()

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._started.wait(30), "the HTTP target did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
