"""A database that goes silent (packets dropped, no reset) gets 503 quickly, not a hung request.

PostgreSQL through a proxy that turns into a black hole (tests/blackhole_proxy.py). The 503 must
come from the store's own deadlines (store/db.py, store/watchdog.py), not from the server's
request_timeout backstop, which is set far out of reach here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import peer
from tests.blackhole_proxy import BlackholeProxy
from tests.endpoint import CPA_RM, GEMEENTE, RINIS, cpa_folder, party_settings, running, url


@pytest.fixture
def proxied_pg_url(pg_schema_url: str) -> Iterator[tuple[str, BlackholeProxy]]:
    real = sa.make_url(pg_schema_url)
    proxy = BlackholeProxy((real.host or "127.0.0.1", real.port or 5432))
    try:
        yield real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        proxy.close()


async def test_blackholed_database_answers_503(
    tmp_path: Path, proxied_pg_url: tuple[str, BlackholeProxy], caplog: pytest.LogCaptureFixture
) -> None:
    db_url, proxy = proxied_pg_url
    settings = party_settings("gemeente", tmp_path, db_url, cpa_folder(tmp_path), request_timeout=120.0)
    ping = peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True)
    async with running(settings) as endpoint:
        answer = await peer.post(url(endpoint), ping)
        assert answer.status == 200 and b"Pong" in answer.body
        proxy.blackhole()
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            answer = await peer.post(
                url(endpoint), peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True), timeout=100
            )
        elapsed = time.monotonic() - started
        assert answer.status == 503, answer.text[:300]
        assert any("database unavailable" in m for m in caplog.messages), caplog.messages
        print(f"blackholed database: 503 after {elapsed:.2f} s")  # reported, not asserted
        proxy.restore()
        deadline = time.monotonic() + 60
        while True:  # the pool recovers by itself once the database answers again
            answer = await peer.post(
                url(endpoint), peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True)
            )
            if answer.status == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert answer.status == 200 and b"Pong" in answer.body
