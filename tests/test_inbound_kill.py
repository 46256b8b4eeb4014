"""Ack after commit: kill -9 the endpoint while reliable messages stream in, restart, retry.

Every message that was acknowledged must be stored exactly once; every message that was not
acknowledged must be accepted when the sender retries it after the restart.
"""

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
TOTAL = 120
KILL_AFTER = 40


async def _send(endpoint_url: str, h: peer.Header) -> bool:
    """True only when a synchronous Acknowledgment for this message came back."""
    soap = peer.envelope(h, sync_reply=True, content_ids=("p@peer.test",))
    ctype, body = peer.multipart(
        soap, [("p@peer.test", "application/xml", b"<x>" + h.message_id.encode() + b"</x>")]
    )
    try:
        answer = await peer.post(endpoint_url, body, content_type=ctype, timeout=10)
    except (aiohttp.ClientError, OSError, TimeoutError):  # reset/refused while the process dies
        return False
    return answer.status == 200 and h.message_id.encode() in answer.body and b"Acknowledgment" in answer.body


async def test_kill_mid_stream_loses_nothing_and_duplicates_nothing(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    settings = party_settings("gemeente", tmp_path, db_url, cpa_folder(tmp_path), port=port)
    server = ServerProcess(
        write_settings(settings, tmp_path / "gemeente.toml"), port, tmp_path / "server.log"
    )
    endpoint_url = f"https://localhost:{port}/ebms"
    headers = [
        peer.Header(CPA_SYNC, RINIS, GEMEENTE, SERVICE, ACTION, from_role="GGk", to_role="Gemeente")
        for _ in range(TOTAL)
    ]
    acked: set[str] = set()
    server.start()
    try:
        semaphore = asyncio.Semaphore(4)

        async def one(h: peer.Header) -> None:
            async with semaphore:
                if await _send(endpoint_url, h):
                    acked.add(h.message_id)
                    if len(acked) == KILL_AFTER:
                        server.kill()

        await asyncio.gather(*(one(h) for h in headers))
        assert KILL_AFTER <= len(acked) < TOTAL, f"{len(acked)} acknowledged: the kill came too late"

        server.start()  # restart on the same database
        # The sender retries everything it has no Ack for, and (harmlessly) a few it has.
        retry = [h for h in headers if h.message_id not in acked] + headers[:5]
        results = await asyncio.gather(*(_send(endpoint_url, h) for h in retry))
        assert all(results), "every retried message must now be acknowledged"
    finally:
        server.stop()

    database = Database(db_url)
    try:
        received = MessageStore(database).list(direction="in", kind="business", limit=10_000)
    finally:
        database.dispose()
    ids = [m.message_id for m in received]
    assert len(ids) == len(set(ids)) == TOTAL, "each message stored exactly once"
    assert acked <= set(ids)
