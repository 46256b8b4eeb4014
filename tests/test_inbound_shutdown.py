"""Graceful shutdown (docs/operations.md): SIGTERM while requests are in flight. Requests being handled
finish with their answer, nothing is half-written, every acknowledged message is stored, and the
process exits on its own with status 0."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
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


HELD_BEFORE_SIGTERM = 4  # requests that must be inside the handler when SIGTERM is sent
DEADLINE_S = 120.0  # generous: polling ends as soon as the awaited line appears


async def wait_for_log(log: Path, predicate: Callable[[str], bool], what: str) -> str:
    """Poll the server's log until ``predicate`` holds for its text (no fixed sleeps)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        if predicate(text):
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"server log never showed {what}:\n{text[-3000:]}")


def held_ids(text: str) -> set[str]:
    return set(re.findall(r"test fault: holding (\S+) until", text))


async def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    """SIGTERM goes out only once requests are provably in flight: the server's test-fault knob
    ``hold-until`` keeps each accepted business request inside the handler, logging its
    MessageId, until a release file exists. The test waits for those log lines, sends SIGTERM,
    waits for the server to log that it is shutting down, and only then releases the requests."""
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'g.db'}"
    release = tmp_path / "release"
    settings = party_settings(
        "gemeente",
        tmp_path,
        db_url,
        cpa_folder(tmp_path),
        port=port,
        test_faults=[f"hold-until:{release}"],
        shutdown_grace_seconds=90.0,  # an upper bound for the drain, never waited out when all finish
    )
    log = tmp_path / "server.log"
    server = ServerProcess(write_settings(settings, tmp_path / "g.toml"), port, log)
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
            answer = await peer.post(endpoint_url, body, content_type=ctype, timeout=DEADLINE_S)
        except (aiohttp.ClientError, OSError, TimeoutError):
            return  # refused or cut before an answer: the sender retries later
        if answer.status == 200 and b"Acknowledgment" in answer.body:
            acked.add(h.message_id)
        elif answer.status not in (200, 503):
            answered_badly.append(f"{answer.status} {answer.text[:120]}")

    server.start()
    try:
        tasks = [asyncio.create_task(one(h)) for h in headers]
        text = await wait_for_log(
            log, lambda t: len(held_ids(t)) >= HELD_BEFORE_SIGTERM, f"{HELD_BEFORE_SIGTERM} held requests"
        )
        in_flight = held_ids(text)
        assert server.proc is not None
        server.proc.terminate()  # SIGTERM
        await wait_for_log(log, lambda t: "shutting down" in t, "that it is shutting down")
        release.touch()  # now let the held requests go on, during the shutdown
        await asyncio.gather(*tasks)
        exit_code = await asyncio.to_thread(server.proc.wait, DEADLINE_S)
    finally:
        release.touch()
        server.kill()
    assert exit_code == 0, log.read_text()[-2000:]
    assert not answered_badly
    database = Database(db_url)
    try:
        stored = {
            m.message_id for m in MessageStore(database).list(direction="in", kind="business", limit=1000)
        }
    finally:
        database.dispose()
    assert in_flight <= acked, "every request in flight at SIGTERM must get its Acknowledgment"
    assert acked <= stored, "an acknowledged message must be stored"
