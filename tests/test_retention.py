"""Retention: old received messages go, never inside a CPA's duplicate window (ebMS 2.0 §6.5.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ggk_ebms.clock import FixedClock
from ggk_ebms.config import Settings
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.pipeline.retention import MARGIN, duplicate_window, purge_horizon, purge_once
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore, NewMessage
from tests.endpoint import PROJECT_ROOT

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _dev_rm():  # type: ignore[no-untyped-def]
    return parse_agreement((PROJECT_ROOT / "cpa" / "dev-osb-rm.xml").read_bytes())


def test_window_of_the_dev_cpa_is_the_bp_defaults() -> None:
    # BP defaults: Retries 8 x RetryInterval PT3H = 27 h > PersistDuration P1D.
    assert duplicate_window([_dev_rm()]) == timedelta(hours=27)


def test_horizon_never_inside_the_window() -> None:
    window = timedelta(days=100)
    assert purge_horizon(NOW, retention_days=60, window=window) == NOW - window - MARGIN
    assert purge_horizon(NOW, retention_days=60, window=timedelta(hours=27)) == NOW - timedelta(days=60)
    assert purge_horizon(NOW, retention_days=0, window=window) is None


def _received(message_id: str, status: str) -> NewMessage:
    return NewMessage(
        direction="in",
        message_id=message_id,
        cpa_id=_dev_rm().cpa_id,
        conversation_id="c",
        from_party_id="00000099000001000000",
        to_party_id="00000099000003630000",
        service="ggk:berichtenverkeer:1.0",
        action="envelopHeenbericht-ggk_Di01",
        kind="business",
        timestamp=NOW,
        status=status,
        content_digest="d",
    )


def test_purge_once_forgets_only_old_final_messages(db: Database) -> None:
    CpaRepository(db).add_agreement(_dev_rm())
    old = FixedClock(NOW - timedelta(days=61))
    MessageStore(db, old).receive(
        _received("old@peer", "Processed"), [], response=None, deliver=False, send_response_async=False
    )
    MessageStore(db, old).receive(
        _received("old-pending@peer", "Received"), [], response=None, deliver=True, send_response_async=False
    )
    MessageStore(db, FixedClock(NOW - timedelta(days=2))).receive(
        _received("recent@peer", "Processed"), [], response=None, deliver=False, send_response_async=False
    )
    settings = Settings(retention_days=60)
    assert purge_once(settings, db, FixedClock(NOW)) == 1
    left = {m.message_id for m in MessageStore(db).list(direction="in", limit=100)}
    assert left == {"old-pending@peer", "recent@peer"}  # unfinished and recent ones stay
