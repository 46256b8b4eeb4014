"""Out of file descriptors: the accept loop backs off, logs a line now and then, and recovers.

``ggk-ebms serve`` runs as its own process with a low open-files limit; 300 plain TCP connections
exhaust it. The log must stay small (an outside probe saw 179 MB in a minute from asyncio's
accept errors) and a Ping must succeed once the connections are gone.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests import peer
from tests.endpoint import CPA_RM, GEMEENTE, RINIS, cpa_folder, party_settings
from tests.process import free_port, write_settings


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))


async def test_accept_errors_back_off_and_recover(tmp_path: Path) -> None:
    port = free_port()
    settings = party_settings(
        "gemeente",
        tmp_path,
        f"sqlite:///{tmp_path / 'fd.db'}",
        cpa_folder(tmp_path),
        port=port,
        tls_handshake_timeout=120.0,
        max_connections=1000,
        processes=1,  # the one process whose descriptors are limited
    )
    config = write_settings(settings, tmp_path / "serve.toml")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ggk_ebms", "--config", str(config), "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            preexec_fn=_low_fd_limit,
        )
    clients: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
                await asyncio.sleep(0.1)
        for _ in range(300):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        deadline = time.monotonic() + 60
        while "accepting connections failed" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            await asyncio.sleep(0.1)
        for client in clients:
            client.close()
        clients.clear()
        deadline = time.monotonic() + 120
        while True:
            try:
                answer = await peer.post(
                    f"https://localhost:{port}/ebms",
                    peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True),
                    timeout=10,
                )
                if answer.status == 200:
                    break
            except (OSError, TimeoutError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                failure = f"HTTP {answer.status}"
            assert time.monotonic() < deadline, f"no Pong after the flood: {failure}"
            await asyncio.sleep(0.2)
        assert b"Pong" in answer.body
        text = log.read_text(errors="replace")
        assert text.count("accepting connections failed") <= 15
        assert "Traceback" not in text
        assert len(text) < 50_000
    finally:
        for client in clients:
            client.close()
        proc.terminate()
        proc.wait(timeout=30)
