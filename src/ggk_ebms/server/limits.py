"""Per-connection limits in front of aiohttp: connection counts, header deadline, post-handshake checks.

aiohttp itself bounds none of these (an outside probe held 300 slow-loris and 100 idle TLS
connections open for minutes). Each accepted connection gets a ``GuardedProtocol`` that wraps
aiohttp's request handler protocol and

- counts the connection against ``max_connections_per_client`` (by the SHA-256 of the TLS client
  certificate); a connection over the limit waits, with reading paused, until another connection
  of that certificate closes, and is closed when none does within ``header_timeout``, so a burst
  of a busy partner is queued while a flood of one certificate costs no HTTP parsing;
- runs the post-handshake ``ConnectionCheck`` (revocation, security/revocation.py) with reading
  paused, so a refused certificate costs no HTTP parsing at all;
- arms a header deadline when the connection is new, when the first byte of a next request
  arrives and (longer: keep-alive plus header time) when a response is done; the app's middleware
  disarms it when aiohttp hands over a complete request, and nothing is armed while that request
  is being handled (its body has its own limits, server/app.py).

The total connection count is kept by the listener (server/listener.py), which holds one
``Slot`` per connection and stops accepting at ``max_connections``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from ggk_ebms.config import Settings

log = logging.getLogger(__name__)

# A check of the client certificate (DER) after the handshake: None to go on, or why not.
ConnectionCheck = Callable[[bytes], Awaitable[str | None]]


@dataclass(frozen=True)
class Limits:
    max_connections: int
    max_connections_per_client: int
    tls_handshake_timeout: float
    header_timeout: float
    keepalive_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_connections=settings.max_connections,
            max_connections_per_client=settings.max_connections_per_client,
            tls_handshake_timeout=settings.tls_handshake_timeout,
            header_timeout=settings.header_timeout,
            keepalive_timeout=settings.keepalive_timeout,
        )


class Slot:
    """One counted connection; ``release`` is safe to call more than once."""

    def __init__(self, on_release: Callable[[], None]) -> None:
        self._on_release: Callable[[], None] | None = on_release

    def release(self) -> None:
        if self._on_release is not None:
            callback, self._on_release = self._on_release, None
            callback()


class ConnectionRegistry:
    """The live guarded connections, per client certificate and by transport."""

    def __init__(self, limits: Limits, check: ConnectionCheck | None = None) -> None:
        self.limits = limits
        self.check = check
        self._per_client: dict[str, int] = {}
        self._by_transport: dict[int, GuardedProtocol] = {}
        self._waiting: dict[str, deque[GuardedProtocol]] = {}

    def add_client(self, fingerprint: str, guard: GuardedProtocol | None = None) -> bool:
        """Count a connection of this certificate; False when it is over the limit (``guard``,
        when given, then waits in line for a connection of the same certificate to close)."""
        count = self._per_client.get(fingerprint, 0)
        if count >= self.limits.max_connections_per_client:
            if guard is not None:
                self._waiting.setdefault(fingerprint, deque()).append(guard)
            return False
        self._per_client[fingerprint] = count + 1
        return True

    def remove_client(self, fingerprint: str) -> None:
        waiting = self._waiting.get(fingerprint)
        while waiting:
            guard = waiting.popleft()
            if guard.slot_granted():
                return  # the count stays: the slot moved to the waiting connection
        self._waiting.pop(fingerprint, None)
        count = self._per_client.get(fingerprint, 0) - 1
        if count > 0:
            self._per_client[fingerprint] = count
        else:
            self._per_client.pop(fingerprint, None)

    def cancel_wait(self, fingerprint: str, guard: GuardedProtocol) -> None:
        waiting = self._waiting.get(fingerprint)
        if waiting and guard in waiting:
            waiting.remove(guard)
            if not waiting:
                del self._waiting[fingerprint]

    def waiting(self) -> int:
        return sum(len(w) for w in self._waiting.values())

    def clients(self) -> dict[str, int]:
        return dict(self._per_client)

    def register(self, transport: asyncio.BaseTransport, guard: GuardedProtocol) -> None:
        self._by_transport[id(transport)] = guard

    def unregister(self, transport: asyncio.BaseTransport) -> None:
        self._by_transport.pop(id(transport), None)

    def guard_for(self, transport: asyncio.BaseTransport | None) -> GuardedProtocol | None:
        return None if transport is None else self._by_transport.get(id(transport))

    def __len__(self) -> int:
        return len(self._by_transport)


def peer_fingerprint(transport: asyncio.BaseTransport) -> tuple[str, bytes | None]:
    """SHA-256 of the TLS client certificate (hex) and the certificate, or ("", None)."""
    ssl_object = transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return (hashlib.sha256(der).hexdigest(), der) if der else ("", None)


class GuardedProtocol(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection; see the module docstring."""

    def __init__(self, inner: Any, registry: ConnectionRegistry, slot: Slot) -> None:
        self._inner = inner
        self._registry = registry
        self._slot = slot
        self._transport: asyncio.Transport | None = None
        self._fingerprint = ""
        self._counted = False
        self._passed = False  # the inner protocol got connection_made
        self._in_request = False
        self._deadline: asyncio.TimerHandle | None = None
        self._check_task: asyncio.Task[None] | None = None
        self._peer = ""
        self._der: bytes | None = None
        self._waiting = False  # over the per-certificate limit, in line for a slot
        self._paused = False

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, but not always an asyncio.Transport subclass: uvloop's TLS
        # transport is its own class with the same methods (server/loop.py).
        self._transport = cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        self._peer = str(peername[0]) if peername else "?"
        self._fingerprint, self._der = peer_fingerprint(transport)
        self._registry.register(transport, self)
        if self._fingerprint:
            if not self._registry.add_client(self._fingerprint, self):
                self._waiting = True
                self._pause()
                self._arm()  # closed when no connection of this certificate frees up in time
                return
            self._counted = True
        self._proceed()

    def slot_granted(self) -> bool:
        """Called by the registry when a connection of the same certificate closed; False when
        this connection is not waiting any more (then the slot goes to the next in line)."""
        if not self._waiting or self._transport is None or self._transport.is_closing():
            return False
        self._waiting = False
        self._counted = True
        self._proceed()
        return True

    def data_received(self, data: bytes) -> None:
        if not self._passed:
            return  # only reachable between abort() and connection_lost
        if not self._in_request and self._deadline is None:
            self._arm()  # the first byte of a next request on a kept-alive connection
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if not self._passed:
            return None
        result: bool | None = self._inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._waiting:
            self._registry.cancel_wait(self._fingerprint, self)
            self._waiting = False
        if self._check_task is not None:
            self._check_task.cancel()
        if self._transport is not None:
            self._registry.unregister(self._transport)
        if self._counted:
            self._registry.remove_client(self._fingerprint)
            self._counted = False
        self._slot.release()
        if self._passed:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._passed:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._passed:
            self._inner.resume_writing()

    # -- called by the app's middleware -------------------------------------------------------------

    def request_started(self) -> None:
        self._in_request = True
        self._disarm()

    def request_finished(self) -> None:
        # The next request's headers must be complete within keep-alive plus header time of this
        # answer, also when its first bytes already came with this request (HTTP pipelining) and
        # no later byte would arm the deadline. An idle connection is closed earlier by aiohttp's
        # keep-alive timeout.
        self._in_request = False
        limits = self._registry.limits
        self._arm(limits.keepalive_timeout + limits.header_timeout)

    # -- internals ----------------------------------------------------------------------------------

    def _proceed(self) -> None:
        """The connection has its place: the post-handshake check (reading paused), then HTTP."""
        self._arm()
        check = self._registry.check
        if check is not None and self._der is not None:
            self._pause()
            self._check_task = asyncio.get_running_loop().create_task(self._run_check(check, self._der))
            return
        self._pass()

    def _pause(self) -> None:
        if not self._paused and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True

    def _pass(self) -> None:
        assert self._transport is not None
        self._passed = True
        self._inner.connection_made(self._transport)
        if self._paused:
            self._paused = False
            self._transport.resume_reading()

    async def _run_check(self, check: ConnectionCheck, der: bytes) -> None:
        try:
            reason = await check(der)
        except Exception:  # a check that breaks must not leave the connection hanging
            log.exception("connection check failed for a client from %s", self._peer)
            reason = "certificate check failed"
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if reason is not None:
            log.warning("closed a connection from %s after the TLS handshake: %s", self._peer, reason)
            transport.abort()
            return
        self._pass()

    def _arm(self, seconds: float | None = None) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        delay = self._registry.limits.header_timeout if seconds is None else seconds
        self._deadline = loop.call_later(delay, self._header_timeout)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _header_timeout(self) -> None:
        self._deadline = None
        if self._transport is None or self._transport.is_closing() or self._in_request:
            return
        if self._waiting:
            log.warning(
                "closed a connection from %s: client certificate %s held %d connections all along",
                self._peer,
                self._fingerprint[:16],
                self._registry.limits.max_connections_per_client,
            )
            self._transport.abort()
            return
        log.info("closed a connection from %s: no complete request headers in time", self._peer)
        self._transport.abort()
