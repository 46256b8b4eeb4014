"""The accept loop: a bounded number of connections, a TLS handshake deadline, accept errors backed off.

asyncio's own server accepts without limit and, when the process runs out of file descriptors,
retries at once and logs every failure with a traceback (an outside probe saw the log grow by
179 MB in a minute while every Ping was blocked). This loop instead

- takes a connection only while fewer than ``max_connections`` are open; beyond that clients
  wait in the kernel's accept queue (the listen backlog), costing us nothing;
- gives each connection ``tls_handshake_timeout`` seconds for the TLS handshake;
- after an accept error pauses 10 ms, doubling per error in a row up to
  ``accept_backoff_max_seconds``, and logs such errors at most once per 10 s with a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from ggk_ebms.server.limits import ConnectionRegistry, GuardedProtocol, Slot

log = logging.getLogger(__name__)

_FIRST_BACKOFF = 0.01
_ERROR_LOG_INTERVAL = 10.0


def bind(host: str, port: int, *, reuse_port: bool, backlog: int = 512) -> list[socket.socket]:
    """Listening sockets for every address ``host`` resolves to (like asyncio's create_server)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen: set[tuple[Any, ...]] = set()
    try:
        for family, type_, proto, _name, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, type_, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            if port == 0:
                # One ephemeral port for every address, as asyncio does it.
                port = sock.getsockname()[1]
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Listener:
    """Accepts on ``sockets`` into ``protocol_factory`` (aiohttp's server) under the limits."""

    def __init__(
        self,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], Any],
        context: ssl.SSLContext | None,
        registry: ConnectionRegistry,
        *,
        backoff_max: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sockets = sockets
        self._factory = protocol_factory
        self._context = context
        self._registry = registry
        self._backoff_max = backoff_max
        self._monotonic = monotonic
        self._free = asyncio.Semaphore(registry.limits.max_connections)
        self._open = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._handshakes: set[asyncio.Task[None]] = set()
        self._errors_unlogged = 0
        self._last_error_log = -_ERROR_LOG_INTERVAL

    @property
    def open_connections(self) -> int:
        return self._open

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._accept_loop(sock)) for sock in self.sockets]

    async def close(self) -> None:
        """Stop accepting and drop connections still in their handshake; open ones stay."""
        for task in self._tasks:
            task.cancel()
        for task in list(self._handshakes):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._handshakes, return_exceptions=True)
        for sock in self.sockets:
            sock.close()

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        backoff = _FIRST_BACKOFF
        while True:
            await self._free.acquire()
            try:
                conn, _address = await loop.sock_accept(sock)
            except asyncio.CancelledError:
                self._free.release()
                raise
            except OSError as exc:
                self._free.release()
                self._accept_error(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            backoff = _FIRST_BACKOFF
            self._open += 1
            slot = Slot(self._released)
            task = asyncio.create_task(self._connect(conn, slot))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    def _released(self) -> None:
        self._open -= 1
        self._free.release()

    async def _connect(self, conn: socket.socket, slot: Slot) -> None:
        loop = asyncio.get_running_loop()
        registry = self._registry

        def protocol() -> GuardedProtocol:
            return GuardedProtocol(self._factory(), registry, slot)

        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.connect_accepted_socket(
                protocol,
                conn,
                ssl=self._context,
                ssl_handshake_timeout=registry.limits.tls_handshake_timeout if self._context else None,
            )
        except asyncio.CancelledError:
            conn.close()
            slot.release()
            raise
        except (OSError, ssl.SSLError, TimeoutError, EOFError) as exc:
            # A failed or timed-out handshake: nothing reached the HTTP layer.
            log.debug("TLS handshake failed: %s", exc)
            with contextlib.suppress(OSError):
                conn.close()
            slot.release()

    def _accept_error(self, exc: OSError) -> None:
        self._errors_unlogged += 1
        now = self._monotonic()
        if now - self._last_error_log >= _ERROR_LOG_INTERVAL:
            log.warning(
                "accepting connections failed %d time(s) since the last report: %s; pausing accepts",
                self._errors_unlogged,
                exc.strerror or exc,
            )
            self._errors_unlogged = 0
            self._last_error_log = now
