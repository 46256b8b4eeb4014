"""What every API handler may use: settings, database, caches, clock and the shared limiter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from ggk_ebms.api.metrics import ApiMetrics
from ggk_ebms.api.ratelimit import RateLimiter
from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.store.db import Database


@dataclass
class ApiContext:
    settings: Settings
    database: Database
    agreements: AgreementCache
    clock: Clock
    ids: IdGenerator
    limiter: RateLimiter
    metrics: ApiMetrics
    # The worker tasks of this process (send, deliver, retention): /health/ready checks them.
    workers: Callable[[], list[asyncio.Task[None]]] = field(default=lambda: [])
