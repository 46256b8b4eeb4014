"""Inside ``serve``: aanleveringen left in Ontvangen or Bezig by a crash or stop become Onderbroken.

Runs at start and then every half ``aanlever_idle_seconds`` (``services.aanleveren.onderbroken``;
docs/operations.md "Aanleveren"), so a batch is never left showing Bezig for ever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from ggk_ebms.clock import Clock
from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.runtime import Runtime
from ggk_ebms.services.aanleveren import onderbroken
from ggk_ebms.services.context import ServiceContext

log = logging.getLogger(__name__)

ACTOR = "serve"  # the audit trail's actor: no person marks these batches


def aanlever_recovery_task(
    settings: Settings, *, clock: Clock | None = None
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A factory for ``server.run.start_endpoint(workers=[...])``."""
    idle = timedelta(seconds=settings.aanlever_idle_seconds)

    async def run(runtime: Runtime) -> None:
        ctx = ServiceContext(
            database=runtime.database, settings=settings, actor=ACTOR, clock=clock or runtime.clock
        )
        while True:
            try:
                for verslag in await asyncio.to_thread(onderbroken, ctx, idle):
                    log.warning(
                        "aanlevering %d (%s) was left unfinished by a stop: marked Onderbroken after "
                        "%d file(s); upload it again to finish (files already sent are not sent twice)",
                        verslag.batch,
                        verslag.bestandsnaam,
                        len(verslag.bestanden),
                    )
            except GgkEbmsError as exc:
                log.error("aanleveren: checking for interrupted batches failed, trying again later: %s", exc)
            await asyncio.sleep(max(1.0, idle.total_seconds() / 2))

    return run
