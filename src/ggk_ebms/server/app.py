"""The HTTPS endpoint: aiohttp app for POST /ebms behind mutual TLS.

This module only does transport work: it reads the body with a streamed size cap (chunked
bodies too, digest §12 "5 MB cap bypassed by chunked encoding"), takes the peer certificate from
the TLS session (or, only from allow-listed proxies, from a header: digest §9 "Proxy header"),
and hands an ``InboundRequest`` to the pipeline, which runs in a thread pool because it parses
XML and talks to the database synchronously. The pipeline's ``Reply`` goes back as is.
"""

from __future__ import annotations

import asyncio
import io
import logging
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from aiohttp import web

from ggk_ebms.errors import SoapFaultError
from ggk_ebms.pipeline.reply import InboundRequest, Reply, fault_reply
from ggk_ebms.security.identity import PeerIdentity
from ggk_ebms.security.proxy import client_cert_from_proxy

log = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024


class Handler(Protocol):
    def handle(self, request: InboundRequest) -> Reply: ...


class _TooLarge(Exception):
    pass


async def _read_capped(request: web.Request, limit: int) -> bytes:
    """Read the whole body, refusing it as soon as more than ``limit`` bytes have arrived."""
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge
    # One growing buffer instead of a list of chunks joined at the end: joining held the body twice
    # at its peak, 50 MB for a 25 MB StUF envelope. getvalue() hands the buffer over without a copy.
    body = io.BytesIO()
    while True:
        chunk = await request.content.read(_READ_CHUNK)
        if not chunk:
            break
        if body.tell() + len(chunk) > limit:
            raise _TooLarge
        body.write(chunk)
    return body.getvalue()


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


def create_app(
    handler: Handler,
    *,
    path: str,
    max_body_bytes: int,
    executor: ThreadPoolExecutor,
    proxy_client_cert_header: str = "",
    proxy_allowlist: list[str] | None = None,
) -> web.Application:
    allowlist = list(proxy_allowlist or [])

    async def ebms(request: web.Request) -> web.Response:
        try:
            body = await _read_capped(request, max_body_bytes)
        except _TooLarge:
            log.warning("refused a request body over %d bytes from %s", max_body_bytes, request.remote)
            # Decision (digest §3.2): 413 where the reference adapter gives 500.
            return _response(
                fault_reply(SoapFaultError(f"Request body exceeds {max_body_bytes} bytes", http_status=413))
            )
        inbound = InboundRequest(
            content_type=request.headers.get("Content-Type", ""),
            soap_action=request.headers.get("SOAPAction"),
            body=body,
            peer=_peer_identity(request, proxy_client_cert_header, allowlist),
            remote=request.remote or "",
        )
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(executor, handler.handle, inbound)
        return _response(reply)

    async def not_allowed(request: web.Request) -> web.Response:
        # Decision (digest §3.2): 405 for anything but POST.
        return web.Response(status=405, headers={"Allow": "POST"}, text="Only POST is allowed here.\n")

    # The whole body is read by _read_capped; aiohttp's own cap is set just above ours so that it
    # never answers first with a response of its own.
    app = web.Application(client_max_size=max_body_bytes + 1)
    app.router.add_post(path, ebms)
    app.router.add_route("*", path, not_allowed)
    return app
