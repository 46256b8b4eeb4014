"""Run the Ophalen retention (``services.ophalen.purge``) inside ``serve``, once an hour.

The portal's rules (GGk handleiding: Ophalen/berichtenlog): gelezen items go after 168 hours, every item after
90 days, removed messages leave the berichtenlog 60 days later; all three are settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final

from ggk_ebms.clock import Clock
from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.runtime import Runtime
from ggk_ebms.services.context import ServiceContext
from ggk_ebms.services.ophalen import purge

log = logging.getLogger(__name__)

INTERVAL_SECONDS: Final = 3600.0


def mailbox_retention_task(
    settings: Settings, *, clock: Clock | None = None, interval: float = INTERVAL_SECONDS
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A factory for ``server.run.start_endpoint(workers=[...])``: purge now and every hour."""

    async def run(runtime: Runtime) -> None:
        ctx = ServiceContext(
            database=runtime.database, settings=settings, actor="retentie", clock=clock or runtime.clock
        )
        while True:
            try:
                result = await asyncio.to_thread(purge, ctx)
                if result.removed_gelezen or result.removed_old or result.forgotten:
                    log.info(
                        "ophalen: %d gelezen and %d old item(s) removed, %d removed message(s) forgotten",
                        result.removed_gelezen,
                        result.removed_old,
                        result.forgotten,
                    )
            except GgkEbmsError as exc:
                log.error("ophalen: retention failed, trying again later: %s", exc)
            await asyncio.sleep(interval)

    return run
