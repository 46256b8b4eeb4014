"""When the koppeltabel catch-up runs: between bursts of traffic, and at least every so often. Pure.

The catch-up (services/koppeltabel.py ``koppeltabel_task``) is bookkeeping: the services that read
the koppeltabel catch up first themselves, so no answer waits for it. The requests do wait for
it when it shares the cores with them: on the 2-core machine of docs/performance.md the catch-up
of up to 1,000 messages every 5 s made the slowest 1% of requests at half load (p99 20-40 ms,
11-13 ms without it), in its own nice'd process too. So a poll that finds messages stored since
the previous poll leaves the catch-up for later, and the first quiet poll does it; under traffic
that never pauses it still runs once every ``max_defer`` seconds, so the koppeltabel never falls
more than that far behind a quiet moment.

Traffic is read from the store as the highest message pk, which covers every process and every
node writing to the same database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

MAX_DEFER_SECONDS: Final = 60.0


@dataclass
class CatchUpPace:
    """The decision of each poll; ``due`` is called once per poll with the store's newest pk and a
    monotonic time in seconds."""

    max_defer: float = MAX_DEFER_SECONDS
    _newest: int | None = None
    _last_run: float = -math.inf  # so the first poll is overdue and always runs

    def due(self, newest_pk: int | None, now: float) -> bool:
        """Whether the catch-up runs at this poll (and, if so, it counts as run at ``now``)."""
        busy = newest_pk != self._newest
        self._newest = newest_pk
        if busy and now - self._last_run < self.max_defer:
            return False
        self._last_run = now
        return True
