"""Graceful shutdown (issue 3): SIGTERM while requests are in flight. Requests being handled
finish with their answer, nothing is half-written, every acknowledged message is stored, and the
process exits on its own with status 0."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from tests import peer
from tests.endpoint import ACTION, GEMEENTE, RINIS, SERVICE, cpa_folder, party_settings
from tests.process import ServerProcess, free_port, write_settings

pytestmark = pytest.mark.slow

CPA_SYNC = "ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_sync-1"


async def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'g.db'}"
    settings = party_settings("gemeente", tmp_path, db_url, cpa_folder(tmp_path), port=port)
    server = ServerProcess(write_settings(settings, tmp_path / "g.toml"), port, tmp_path / "server.log")
    endpoint_url = f"https://localhost:{port}/ebms"
    headers = [
        peer.Header(CPA_SYNC, RINIS, GEMEENTE, SERVICE, ACTION, from_role="GGk", to_role="Gemeente")
        for _ in range(40)
    ]
    acked: set[str] = set()
    answered_badly: list[str] = []

    async def one(h: peer.Header) -> None:
        soap = peer.envelope(h, sync_reply=True, content_ids=("p@peer.test",))
        ctype, body = peer.multipart(soap, [("p@peer.test", "application/octet-stream", b"z" * 300_000)])
        try:
            answer = await peer.post(endpoint_url, body, content_type=ctype, timeout=20)
        except (aiohttp.ClientError, OSError, TimeoutError):
            return  # refused or cut before an answer: the sender retries later
        if answer.status == 200 and b"Acknowledgment" in answer.body:
            acked.add(h.message_id)
        elif answer.status not in (200, 503):
            answered_badly.append(f"{answer.status} {answer.text[:120]}")

    server.start()
    try:
        tasks = [asyncio.create_task(one(h)) for h in headers]
        await asyncio.sleep(0.3)  # let a good share of them be in flight
        assert server.proc is not None
        server.proc.terminate()  # SIGTERM
        await asyncio.gather(*tasks)
        exit_code = await asyncio.to_thread(server.proc.wait, 30)
    finally:
        server.kill()
    assert exit_code == 0, (tmp_path / "server.log").read_text()[-2000:]
    assert not answered_badly
    database = Database(db_url)
    try:
        stored = {
            m.message_id for m in MessageStore(database).list(direction="in", kind="business", limit=1000)
        }
    finally:
        database.dispose()
    assert acked <= stored, "an acknowledged message must be stored"
    assert acked, "some requests were in flight and must have finished"
