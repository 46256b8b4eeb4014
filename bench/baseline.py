"""The no-op baseline: the endpoint's TLS stack and HTTP server with a handler that does nothing.

Same aiohttp version, same ``server_context_from_settings`` (mutual TLS, the dev PKI, the same
protocol and cipher policy), same body size cap and the same way of reading the body in chunks;
the handler then answers 204 without looking at the bytes. Whatever the endpoint costs beyond
this is the price of ebMS: MIME, XML, CPA, database. Run as its own process(es), like the server:

    python -m bench.baseline --config settings.toml [--processes N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import signal
from pathlib import Path

from aiohttp import web

from ggk_ebms.config import Settings, load
from ggk_ebms.security.tls import server_context_from_settings

_READ_CHUNK = 256 * 1024  # as server/app.py reads


def create_app(settings: Settings) -> web.Application:
    async def noop(request: web.Request) -> web.Response:
        while await request.content.read(_READ_CHUNK):
            pass
        return web.Response(status=204)

    app = web.Application(client_max_size=settings.max_body_bytes + 1)
    app.router.add_post(settings.path, noop)
    return app


async def serve(settings: Settings, reuse_port: bool) -> None:
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner,
        settings.host,
        settings.port,
        ssl_context=server_context_from_settings(settings),
        reuse_address=True,
        reuse_port=reuse_port or None,
    )
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def _run(settings: Settings, reuse_port: bool) -> None:
    asyncio.run(serve(settings, reuse_port))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="settings file (host, port, TLS)")
    parser.add_argument("--processes", type=int, default=1, help="processes sharing the port")
    args = parser.parse_args(argv)
    settings = load(args.config, environ={})
    if args.processes <= 1:
        _run(settings, False)
        return
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_run, args=(settings, True)) for _ in range(args.processes)]
    for child in children:
        child.start()

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.is_alive():
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()


if __name__ == "__main__":
    main()
