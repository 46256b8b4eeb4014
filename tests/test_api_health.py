"""/health/ready over a real PostgreSQL behind a TCP proxy: ready, not ready with the reason
when the proxy cuts the database off, ready again when it comes back. Plus the pure checks."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ggk_ebms.api.health import stale_heartbeats
from ggk_ebms.store.heartbeats import Heartbeat
from tests.api_support import call, token
from tests.endpoint import cpa_folder, party_settings, running
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow


def test_stale_heartbeats_allow_two_missed_beats() -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    beats = [
        Heartbeat("host/send", "send", now - timedelta(seconds=44)),
        Heartbeat("host/delivery", "delivery", now - timedelta(seconds=46)),
    ]
    stale = stale_heartbeats(beats, now, interval=15.0)
    assert len(stale) == 1 and stale[0].startswith("delivery host/delivery")


async def _ready(endpoint, secret: str) -> tuple[int, dict[str, object]]:  # type: ignore[no-untyped-def]
    status, _, body = await call(endpoint, "GET", "/health/ready", secret)
    return status, json.loads(body)


async def _until_status(endpoint, secret: str, wanted: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    async def poll() -> dict[str, object]:
        while True:
            status, body = await _ready(endpoint, secret)
            if status == wanted:
                return body
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), 60)


@pytest.mark.postgres
async def test_ready_follows_the_database(tmp_path: Path, pg_schema_url: str) -> None:
    url = sa.make_url(pg_schema_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = party_settings("gemeente", tmp_path, proxied, cpa_folder(tmp_path))
    try:
        async with running(settings) as endpoint:
            # In a thread: the proxy runs on this event loop, a blocking call here would stall it.
            secret = await asyncio.to_thread(token, endpoint, "monitor", "read")
            status, body = await _ready(endpoint, secret)
            assert status == 200, body
            assert body["status"] == "ready"
            assert {c["name"] for c in body["checks"]} >= {
                "database",
                "migrations",
                "heartbeats",
                "cpas",
                "workers",
            }
            await proxy.cut()
            # The token check needs the database too: 503 with the reason either way; live stays up.
            live = await call(endpoint, "GET", "/health/live")
            assert live[0] == 200
            down = await _until_down(endpoint, secret)
            assert down
            await proxy.restore()
            body = await _until_status(endpoint, secret, 200)
            assert body["status"] == "ready"
    finally:
        await proxy.cut()


async def _until_down(endpoint, secret: str) -> bool:  # type: ignore[no-untyped-def]
    async def poll() -> bool:
        while True:
            status, _, body = await call(endpoint, "GET", "/health/ready", secret)
            if status == 503:
                document = json.loads(body)
                return "database" in json.dumps(document)
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), 60)


async def test_ready_reports_a_silent_worker(tmp_path: Path) -> None:
    from ggk_ebms.store.heartbeats import HeartbeatStore
    from tests.outbound_support import free_port, make_cpa, side_settings, started

    g_port = free_port()
    _, cpa = make_cpa(g_port, free_port())
    settings = side_settings(
        "gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa, g_port, api_heartbeat_seconds=0.2
    )
    async with started(settings) as endpoint:
        secret = token(endpoint, "monitor", "read")
        store = HeartbeatStore(endpoint.database)

        async def beating() -> None:
            while not any(b.kind == "worker" for b in await asyncio.to_thread(store.all)):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(beating(), 30)
        body = await _until_status(endpoint, secret, 200)
        assert next(c for c in body["checks"] if c["name"] == "workers")["detail"] == "1 running"
        # A worker elsewhere that stopped beating (its process died) makes us not ready.
        old = endpoint.database
        with old.session() as session:
            session.execute(
                sa.text(
                    "INSERT INTO worker_heartbeat (name, kind, beat_at) VALUES ('other/worker', 'worker', :t)"
                ),
                {"t": datetime(2026, 1, 1)},
            )
        status, body = await _ready(endpoint, secret)
        assert status == 503
        heartbeats = next(c for c in body["checks"] if c["name"] == "heartbeats")
        assert not heartbeats["ok"] and "other/worker" in heartbeats["detail"]
