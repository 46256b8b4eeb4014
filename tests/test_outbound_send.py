"""Sending over real mutual TLS on loopback: the gemeente's worker sends, the RINIS counterpart
(the same endpoint with dev/rinis-like settings, sometimes misbehaving through test_faults)
answers. The gemeente side runs on SQLite and PostgreSQL (``db_url``); RINIS on its own SQLite.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ggk_ebms.cpa.model import Profile
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore
from tests.outbound_support import (
    eventually,
    free_port,
    make_cpa,
    received_ids,
    side_settings,
    started,
    status_of,
    submit,
)

pytestmark = pytest.mark.slow


def _sides(tmp_path: Path, db_url: str, cpa: bytes, g_port: int, r_port: int, **rinis: object):  # type: ignore[no-untyped-def]
    gemeente = side_settings("gemeente", tmp_path, db_url, cpa, g_port)
    counterpart = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'rinis.db'}", cpa, r_port, **rinis)
    return gemeente, counterpart


def _final(database, pk: int) -> str | None:  # type: ignore[no-untyped-def]
    status = status_of(database, pk)
    return status if status in ("Delivered", "DeliveryFailed", "Expired") else None


async def test_reliable_async_ack_delivers(tmp_path: Path, db_url: str) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    gemeente, rinis = _sides(tmp_path, db_url, cpa, g_port, r_port)
    async with started(rinis) as partner, started(gemeente) as us:
        message = submit(gemeente, us.database, cpa_id, b"<payload>one</payload>")
        assert message.status == "Created" and message.time_to_live is not None
        assert message.time_to_live - message.timestamp == timedelta(seconds=1) * (3 + 1)
        assert await eventually(lambda: _final(us.database, message.pk), what="Delivered") == "Delivered"
        stored = MessageStore(us.database).get(message.pk)
        assert stored.status_reason == "Acknowledgment received"
        attempts = JobQueue(us.database).attempts(message.pk)
        assert [(a.outcome, a.http_status) for a in attempts] == [("ok", 204)]
        received = MessageStore(partner.database).find("in", message.message_id)
        assert received is not None and received.status == "Received"
        assert [p.data for p in MessageStore(partner.database).parts(received.pk)] == [
            b"<payload>one</payload>"
        ]
        # The async Acknowledgment went out from RINIS's queue and is Sent there.
        acks = MessageStore(partner.database).list(direction="out", kind="Acknowledgment")
        await eventually(
            lambda: MessageStore(partner.database).get(acks[0].pk).status == "Sent", what="Ack Sent"
        )


async def test_reliable_sync_ack_delivers_and_keeps_the_ack(tmp_path: Path, db_url: str) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, sync_reply=True, version="sync-t")
    gemeente, rinis = _sides(tmp_path, db_url, cpa, g_port, r_port)
    async with started(rinis), started(gemeente) as us:
        message = submit(gemeente, us.database, cpa_id)
        assert message.sync_reply
        assert await eventually(lambda: _final(us.database, message.pk), what="Delivered") == "Delivered"
        stored = MessageStore(us.database).get(message.pk)
        assert stored.status_reason == "Acknowledgment received in the response"
        related = MessageStore(us.database).list_related(message.message_id)
        assert [(m.direction, m.kind) for m in related] == [("in", "Acknowledgment")]
        attempts = JobQueue(us.database).attempts(message.pk)
        assert [(a.outcome, a.http_status) for a in attempts] == [("ok", 200)]


async def test_best_effort_delivered_on_2xx(tmp_path: Path, db_url: str) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, profile=Profile.OSB_BE, version="be-t")
    gemeente, rinis = _sides(tmp_path, db_url, cpa, g_port, r_port)
    async with started(rinis) as partner, started(gemeente) as us:
        message = submit(gemeente, us.database, cpa_id)
        assert message.time_to_live is None
        assert await eventually(lambda: _final(us.database, message.pk), what="Delivered") == "Delivered"
        assert (
            MessageStore(us.database).get(message.pk).status_reason == "accepted by the partner (best effort)"
        )
        assert received_ids(partner.database) == [message.message_id]


async def test_partner_down_then_up_is_delivered_after_retry(tmp_path: Path, db_url: str) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, retries=8)
    gemeente, rinis = _sides(tmp_path, db_url, cpa, g_port, r_port)
    async with started(gemeente) as us:
        message = submit(gemeente, us.database, cpa_id)
        queue = JobQueue(us.database)
        failed = await eventually(lambda: len(queue.attempts(message.pk)) >= 2, what="failed attempts")
        assert failed
        first = queue.attempts(message.pk)[0]
        assert first.outcome == "retry" and first.http_status is None
        assert first.error is not None and first.error.startswith("connect:")
        assert status_of(us.database, message.pk) == "Sending"
        async with started(rinis) as partner:
            assert await eventually(lambda: _final(us.database, message.pk), what="Delivered") == "Delivered"
            assert received_ids(partner.database) == [message.message_id]
        assert queue.attempts(message.pk)[-1].http_status == 204


# TimeToLive is Timestamp + RetryInterval x (Retries + 1) in real time. The tests that need all
# attempts inside it use an interval long enough for an attempt on a loaded machine (the suite runs
# ten times under `stress --cpu 2`), so they never race the clock.
LOADED_RETRY_INTERVAL = timedelta(seconds=4)


async def test_503_twice_then_ack(tmp_path: Path, db_url: str) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, retry_interval=LOADED_RETRY_INTERVAL)
    gemeente, rinis = _sides(tmp_path, db_url, cpa, g_port, r_port, test_faults=["http-503:2"])
    async with started(rinis) as partner, started(gemeente) as us:
        message = submit(gemeente, us.database, cpa_id)
        delivered = await eventually(lambda: _final(us.database, message.pk), timeout=90, what="Delivered")
        assert delivered == "Delivered"
        attempts = JobQueue(us.database).attempts(message.pk)
        assert [(a.outcome, a.http_status) for a in attempts] == [("retry", 503), ("retry", 503), ("ok", 204)]
        assert attempts[1].started_at - attempts[0].started_at >= LOADED_RETRY_INTERVAL
        assert received_ids(partner.database) == [message.message_id]


async def test_ack_never_comes_expires_at_time_to_live(tmp_path: Path, db_url: str) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, retries=2, retry_interval=LOADED_RETRY_INTERVAL)
    gemeente, rinis = _sides(tmp_path, db_url, cpa, g_port, r_port, test_faults=["drop-ack"])
    async with started(rinis), started(gemeente) as us:
        message = submit(gemeente, us.database, cpa_id)
        expired = await eventually(lambda: _final(us.database, message.pk), timeout=90, what="Expired")
        assert expired == "Expired"
        stored = MessageStore(us.database).get(message.pk)
        assert stored.time_to_live is not None and stored.updated_at >= stored.time_to_live
        attempts = JobQueue(us.database).attempts(message.pk)
        # The first attempt and Retries (2) retries, each answered 204 and never acknowledged.
        assert [(a.outcome, a.http_status) for a in attempts] == [("ok", 204)] * 3
        assert all(a.started_at < stored.time_to_live for a in attempts)
        assert JobQueue(us.database).jobs_for(message.pk)[0].status == "done"


async def test_message_error_answer_fails_with_its_code(tmp_path: Path, db_url: str) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port)
    gemeente, rinis = _sides(
        tmp_path, db_url, cpa, g_port, r_port, test_faults=["message-error:DeliveryFailure"]
    )
    async with started(rinis), started(gemeente) as us:
        message = submit(gemeente, us.database, cpa_id)
        assert await eventually(lambda: _final(us.database, message.pk), what="failure") == "DeliveryFailed"
        stored = MessageStore(us.database).get(message.pk)
        assert stored.error_code == "DeliveryFailure"
        assert stored.status_reason is not None and "test_faults" in stored.status_reason
        attempts = JobQueue(us.database).attempts(message.pk)
        assert [(a.outcome, a.http_status) for a in attempts] == [("fail", 200)]
        assert JobQueue(us.database).jobs_for(message.pk)[0].status == "failed"
