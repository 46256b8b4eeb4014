"""Forget old received messages, but never inside a CPA's duplicate-elimination window.

ebMS 2.0 §6.5.3: MessageIds must be kept at least (1 + Retries) × RetryInterval (KVS5), and we also
keep them past PersistDuration, plus a day of margin; otherwise a late retry of a message we
forgot would be delivered twice. Within that floor the ``retention_days`` setting decides (the
GGk portal keeps its berichtenlog 60 days). ``MessageStore.purge`` removes only messages in a
final state without unfinished jobs, with the signals that answered them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, timedelta
from typing import Any, Final

from ggk_ebms.clock import Clock
from ggk_ebms.config import Settings
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.runtime import Runtime
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore

log = logging.getLogger(__name__)

MARGIN: Final = timedelta(days=1)
PURGE_INTERVAL_SECONDS: Final = 3600.0


def duplicate_window(agreements: Iterable[Agreement]) -> timedelta:
    """The longest max((1 + Retries) × RetryInterval, PersistDuration) of any channel."""
    window = timedelta(0)
    for agreement in agreements:
        for party in agreement.parties:
            for channel_id in party.channels:
                try:
                    channel = lookup.resolve_channel(party, channel_id)
                except GgkEbmsError:
                    continue
                if channel.retries is not None and channel.retry_interval is not None:
                    window = max(window, channel.retry_interval * (1 + channel.retries))
                if channel.persist_duration is not None:
                    window = max(window, channel.persist_duration)
    return window


def purge_horizon(now: datetime, *, retention_days: int, window: timedelta) -> datetime | None:
    """Received messages created before this moment may go; None: keep everything."""
    if retention_days <= 0:
        return None
    return now - max(timedelta(days=retention_days), window + MARGIN)


def purge_once(settings: Settings, database: Database, clock: Clock) -> int:
    agreements = []
    for stored in CpaRepository(database).list():
        try:
            agreements.append(
                parse_agreement(stored.raw, max_bytes=max(settings.max_cpa_bytes, len(stored.raw)))
            )
        except GgkEbmsError:
            continue
    horizon = purge_horizon(
        clock.now(), retention_days=settings.retention_days, window=duplicate_window(agreements)
    )
    if horizon is None:
        return 0
    purged = MessageStore(database, clock).purge(horizon)
    if purged:
        log.info("retention: forgot %d received message(s) from before %s", purged, horizon.isoformat())
    return purged


def retention_task(
    settings: Settings, *, interval: float = PURGE_INTERVAL_SECONDS
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A factory for ``server.run.start_endpoint(workers=[...])``: purge now and every hour."""

    async def run(runtime: Runtime) -> None:
        while True:
            try:
                await asyncio.to_thread(purge_once, settings, runtime.database, runtime.clock)
            except GgkEbmsError as exc:
                log.error("retention: purge failed, trying again later: %s", exc)
            await asyncio.sleep(interval)

    return run
