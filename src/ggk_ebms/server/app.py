"""The HTTPS endpoint: aiohttp app for POST /ebms behind mutual TLS.

This module only does transport work: it reads the body with a streamed size cap (chunked
bodies too, docs/rules.md "5 MB cap bypassed by chunked encoding"), takes the peer certificate from
the TLS session (or, only from allow-listed proxies, from a header: Digikoppeling BEV ch. 3-5 "Proxy header"),
and hands an ``InboundRequest`` to the pipeline. A small body is decided on the event loop's
own thread and only its commit goes to the store's writer thread (``LoopHandler``,
``INLINE_MAX_BYTES``); a large one, or a request whose decision needs the database, runs in a
worker thread, because it parses XML and talks to the database synchronously. The pipeline's
``Reply`` goes back as is.

Before any of that work (docs/security.md, "Limits" and "Identity first"):

- a body with a Content-Encoding is refused (415) before a byte of it is decompressed, unless
  ``allow_compressed_bodies``;
- the client certificate must belong to a party of one of our CPAs (server/gate.py), else 403
  before the body is read;
- the body must keep arriving (``body_timeout``, ``body_min_rate``), else 408; above
  ``spool_threshold_bytes`` it is spooled to a temporary file while it arrives, and only read into
  memory when its turn comes;
- each client certificate gets ``max_parallel_per_client`` turns at once for the expensive work;
  a request that gets no turn, or whose processing is not done, within ``request_timeout`` gets
  503 (the sender retries; nothing was acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, cast

from aiohttp import web

from ggk_ebms.config import Settings
from ggk_ebms.errors import SoapFaultError
from ggk_ebms.pipeline.reply import InboundRequest, Reply, fault_reply
from ggk_ebms.security.identity import PeerIdentity
from ggk_ebms.security.proxy import client_cert_from_proxy
from ggk_ebms.server.gate import IdentityGate
from ggk_ebms.server.limits import ConnectionRegistry

log = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024
_GATE_UNAVAILABLE = "the stored CPAs cannot be read"


class Handler(Protocol):
    def handle(self, request: InboundRequest) -> Reply: ...


Offload = Callable[[Callable[[], Reply]], Awaitable[Reply]]


class LoopHandler(Handler, Protocol):
    """A handler that can also take a request on the event loop's thread (pipeline/inbound.py),
    giving the work to ``offload`` (a worker thread) itself where it would block."""

    async def handle_async(self, request: InboundRequest, offload: Offload) -> Reply: ...


# Bodies up to this size are decided on the event loop's thread (``LoopHandler``): parsing and
# checking a few KB costs well under a millisecond, less than handing the request to a thread and
# back (docs/performance.md "The request path on the event loop"). Larger ones, up to the 25 MB
# a StUF-GGk envelope may carry, go to a worker thread so that other connections keep being served
# between the GIL's switch intervals.
INLINE_MAX_BYTES = 256 * 1024


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


@dataclass(frozen=True)
class BodyLimits:
    """How a request body must arrive (settings of the same names)."""

    max_bytes: int
    timeout: float = 20.0
    min_rate: int = 8192
    spool_threshold: int = 1024 * 1024
    spool_dir: Path | None = None


@dataclass(frozen=True)
class Guards:
    """The request-level limits of docs/security.md; see the module docstring."""

    gate: IdentityGate | None = None
    registry: ConnectionRegistry | None = None
    max_parallel_per_client: int = 4
    request_timeout: float = 30.0
    allow_compressed_bodies: bool = False
    body_timeout: float = 20.0
    body_min_rate: int = 8192
    spool_threshold: int = 1024 * 1024
    spool_dir: Path | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, gate: IdentityGate | None, registry: ConnectionRegistry | None
    ) -> Guards:
        return cls(
            gate=gate,
            registry=registry,
            max_parallel_per_client=settings.max_parallel_per_client,
            request_timeout=settings.request_timeout,
            allow_compressed_bodies=settings.allow_compressed_bodies,
            body_timeout=settings.body_timeout,
            body_min_rate=settings.body_min_rate,
            spool_threshold=settings.spool_threshold_bytes,
            spool_dir=settings.spool_dir,
        )


async def _read_capped(request: web.Request, limits: BodyLimits) -> IO[bytes]:
    """Read the whole body into a (spooled) file, refusing it as soon as more than
    ``max_bytes`` have arrived (_TooLarge) or when it arrives too slowly (_TooSlow)."""
    limit = limits.max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge
    loop = asyncio.get_running_loop()
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - handed to the caller
        max_size=limits.spool_threshold, dir=str(limits.spool_dir) if limits.spool_dir else None
    )
    try:
        size = 0
        started = loop.time()
        while True:
            try:
                chunk = await asyncio.wait_for(request.content.read(_READ_CHUNK), limits.timeout)
            except TimeoutError:
                raise _TooSlow from None
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            spool.write(chunk)
            elapsed = loop.time() - started
            if elapsed > limits.timeout and size < limits.min_rate * elapsed:
                raise _TooSlow
        spool.seek(0)
        return spool
    except BaseException:
        spool.close()
        raise


def _body_of(body_file: IO[bytes], threshold: int) -> tuple[bytes, mmap.mmap | None]:
    """The body as bytes, or, above ``threshold`` (then on disk), mapped read-only from its file.

    The mapping outlives the file's closing (it holds its own reference to the unlinked file)
    and is unmapped when the last view of it (a part, docs/performance.md "Memory") is gone.
    """
    size = _size(body_file)
    if size <= threshold:
        return body_file.read(), None
    return b"", mmap.mmap(body_file.fileno(), 0, access=mmap.ACCESS_READ)


def _size(body_file: IO[bytes]) -> int:
    size = body_file.seek(0, 2)
    body_file.seek(0)
    return size


class _Budget:
    """Per-identity turns for the expensive work (one asyncio.Semaphore per certificate).

    A turn is held until the work itself ends, not until the answer is sent: a request answered
    503 at request_timeout keeps its turn while its thread still runs, so one identity can never
    have more than ``per_identity`` threads busy.
    """

    def __init__(self, per_identity: int) -> None:
        self._per_identity = per_identity
        self._semaphores: dict[str, tuple[asyncio.Semaphore, int]] = {}

    async def acquire(self, identity: str, timeout: float) -> Callable[[], None]:
        """Wait for a turn (TimeoutError after ``timeout``); returns the call that gives it back."""
        semaphore, users = self._semaphores.get(identity, (asyncio.Semaphore(self._per_identity), 0))
        self._semaphores[identity] = (semaphore, users + 1)
        try:
            await asyncio.wait_for(semaphore.acquire(), timeout)
        except BaseException:
            self._forget(identity)
            raise
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                semaphore.release()
                self._forget(identity)

        return release

    def _forget(self, identity: str) -> None:
        semaphore, users = self._semaphores[identity]
        if users <= 1:
            del self._semaphores[identity]  # no memory per identity once it is quiet
        else:
            self._semaphores[identity] = (semaphore, users - 1)


def _peer_identity(
    request: web.Request, proxy_header: str, proxy_allowlist: list[str]
) -> PeerIdentity | None:
    transport = request.transport
    if transport is None:
        return None
    peername = transport.get_extra_info("peername")
    peer_address = str(peername[0]) if peername else ""
    if proxy_header:
        der = client_cert_from_proxy(request.headers.get(proxy_header), peer_address, proxy_allowlist)
        if der is not None:
            return PeerIdentity.from_der(der)
    ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return PeerIdentity.from_der(der) if der else None


def _response(reply: Reply) -> web.Response:
    headers = dict(reply.headers)
    if reply.body:
        headers["Content-Type"] = reply.content_type
    return web.Response(status=reply.status, body=reply.body or None, headers=headers)


def _fault(message: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    response = _response(
        fault_reply(SoapFaultError(message, "Client" if status < 500 else "Server", http_status=status))
    )
    response.headers.update(headers or {})
    return response


def create_app(
    handler: Handler,
    *,
    path: str,
    max_body_bytes: int,
    executor: ThreadPoolExecutor,
    proxy_client_cert_header: str = "",
    proxy_allowlist: list[str] | None = None,
    guards: Guards | None = None,
) -> web.Application:
    allowlist = list(proxy_allowlist or [])
    limits = guards or Guards()
    body_limits = BodyLimits(
        max_body_bytes, limits.body_timeout, limits.body_min_rate, limits.spool_threshold, limits.spool_dir
    )
    budget = _Budget(limits.max_parallel_per_client)
    loop_handler = cast(LoopHandler, handler) if hasattr(handler, "handle_async") else None
    gate = limits.gate

    refreshing: set[asyncio.Future[None]] = set()

    async def _gate_check(gate: IdentityGate, peer: PeerIdentity | None) -> str | None:
        """The gate's answer. A stale index that admits the peer is refreshed in the background
        (a silent database must not delay admitted partners twice); one that refuses is
        refreshed first, so a CPA imported a moment ago is honoured at once."""
        loop = asyncio.get_running_loop()
        if gate.ready:
            refusal = gate.check(peer)
            if not gate.stale():
                return refusal
            if refusal is None:
                if not refreshing:
                    future = loop.run_in_executor(executor, gate.refresh)
                    refreshing.add(future)
                    future.add_done_callback(_refreshed)
                return None
        try:
            await asyncio.wait_for(loop.run_in_executor(executor, gate.refresh), limits.request_timeout)
        except Exception as exc:  # the database is away: an old index still serves
            log.warning("cannot load the CPAs to check a client certificate: %s", exc)
            if not gate.ready:
                return _GATE_UNAVAILABLE
        return gate.check(peer)

    def _refreshed(future: asyncio.Future[None]) -> None:
        refreshing.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.warning("cannot reload the CPAs for the client certificate gate: %s", future.exception())

    async def ebms(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity") and not limits.allow_compressed_bodies:
            log.info("refused a %s-encoded request body from %s", encoding, request.remote)
            return _fault("Compressed request bodies are not accepted.", 415)
        peer = _peer_identity(request, proxy_client_cert_header, allowlist)
        if gate is not None:
            refusal = await _gate_check(gate, peer)
            if refusal is not None:
                log.warning("refused a request from %s before reading it: %s", request.remote, refusal)
                status = 503 if refusal == _GATE_UNAVAILABLE else 403
                if status == 503:
                    return _fault("Service temporarily unavailable, retry later.", 503, {"Retry-After": "5"})
                return _fault(f"Invalid TLS client certificate: {refusal}", 403)
        try:
            body_file = await _read_capped(request, body_limits)
        except _TooLarge:
            log.warning("refused a request body over %d bytes from %s", max_body_bytes, request.remote)
            # Decision (ebMS 2.0 App. B.2, KVS ch. 4): 413 where the reference adapter gives 500.
            return _fault(f"Request body exceeds {max_body_bytes} bytes", 413)
        except _TooSlow:
            log.info("refused a request body from %s: arriving too slowly", request.remote)
            response = _fault("Request body arrived too slowly.", 408)
            response.force_close()
            return response
        identity = peer.fingerprint_sha256 if peer is not None else request.remote or ""
        content_type = request.headers.get("Content-Type", "")
        soap_action = request.headers.get("SOAPAction")
        remote = request.remote or ""

        def inbound_request() -> InboundRequest:
            # The body enters memory only now, inside this identity's turn.
            with body_file:
                body, spooled = _body_of(body_file, body_limits.spool_threshold)
            return InboundRequest(
                content_type=content_type,
                soap_action=soap_action,
                body=body,
                peer=peer,
                remote=remote,
                spooled=spooled,
            )

        def run() -> Reply:
            return handler.handle(inbound_request())

        def offload(work: Callable[[], Reply]) -> Awaitable[Reply]:
            return loop.run_in_executor(executor, work)

        on_loop = loop_handler is not None and _size(body_file) <= INLINE_MAX_BYTES

        deadline = loop.time() + limits.request_timeout
        try:
            release = await budget.acquire(identity, limits.request_timeout)
        except TimeoutError:
            body_file.close()
            log.warning("request from %s got no turn within %g s: 503", remote, limits.request_timeout)
            return _fault("Service temporarily unavailable, retry later.", 503, {"Retry-After": "5"})
        try:
            work: asyncio.Future[Reply] = (
                asyncio.ensure_future(loop_handler.handle_async(inbound_request(), offload))
                if loop_handler is not None and on_loop
                else loop.run_in_executor(executor, run)
            )
        except BaseException:
            release()
            raise
        work.add_done_callback(lambda _: release())
        try:
            reply = await asyncio.wait_for(asyncio.shield(work), max(0.0, deadline - loop.time()))
        except TimeoutError:
            # The thread cannot be stopped; it finishes (and commits or not) on its own, holding
            # its turn. The sender retries; duplicate elimination recognises a copy (ebMS 2.0 §6.5.3).
            log.warning("request from %s not processed within %g s: 503", remote, limits.request_timeout)
            return _fault("Service temporarily unavailable, retry later.", 503, {"Retry-After": "5"})
        return _response(reply)

    async def not_allowed(request: web.Request) -> web.Response:
        # Decision (ebMS 2.0 App. B.2, KVS ch. 4): 405 for anything but POST.
        return web.Response(status=405, headers={"Allow": "POST"}, text="Only POST is allowed here.\n")

    registry = limits.registry

    @web.middleware
    async def connection_guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # A complete request line and headers are here: stop the header deadline (server/limits.py).
        guard = registry.guard_for(request.transport) if registry is not None else None
        if guard is not None:
            guard.request_started()
        try:
            return await handler(request)
        finally:
            if guard is not None:
                guard.request_finished()

    # The whole body is read by _read_capped; aiohttp's own cap is set just above ours so that it
    # never answers first with a response of its own.
    app = web.Application(client_max_size=max_body_bytes + 1, middlewares=[connection_guard])
    app.router.add_post(path, ebms)
    app.router.add_route("*", path, not_allowed)
    return app
