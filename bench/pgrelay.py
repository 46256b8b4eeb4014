"""A TCP relay to PostgreSQL for endpoint nodes in network namespaces (bench/netns.py).

PostgreSQL listens on 127.0.0.1 only, which a network namespace cannot reach, and its
configuration is the machine's, not the benchmark's. This process listens on the namespaces' LAN
address in the root namespace and copies bytes both ways to the real server; it understands
nothing of the PostgreSQL protocol. Run as a process of its own so its CPU time is measured
apart from the load generator's:

    python -m bench.pgrelay --listen 10.77.5.1 --port 45432 --to 127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
from typing import Final

_CHUNK: Final = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


def _no_delay(writer: asyncio.StreamWriter) -> None:
    # Every query is a small write answered by a small read: Nagle would add a delay to each.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def relay(listen: str, port: int, target_host: str, target_port: int) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            writer.close()
            return
        _no_delay(writer)
        _no_delay(up_writer)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(connection, listen, port, backlog=512)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pgrelay", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="address to listen on")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--to", required=True, help="host:port of the PostgreSQL server")
    ns = parser.parse_args(argv)
    host, _, target_port = ns.to.rpartition(":")
    asyncio.run(relay(ns.listen, ns.port, host, int(target_port)))


if __name__ == "__main__":
    main()
