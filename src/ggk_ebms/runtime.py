"""The composition root: the objects a process shares, built once from the settings.

``serve``, ``worker`` and every CLI command that sends or receives build one ``Runtime`` and hand
its parts to the services; no service constructor builds its own clock, MessageId generator or
CPA cache from defaults. That is how the configured MessageId host reaches every message we create
(Digikoppeling Koppelvlakstandaard ebMS2 EB013: MessageId = UUID@host of our endpoint).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ggk_ebms.clock import Clock, IdGenerator, SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.pipeline.agreements import AgreementCache, process_cache
from ggk_ebms.store.db import Database


def message_id_host(settings: Settings) -> str:
    """Host part of our MessageIds (EB013: UUID@URI, the endpoint host).

    The ``message_id_host`` setting when given; else the bind host when it is a name; else
    ``localhost`` for a loopback bind (the dev CPAs' endpoint host) and this machine's name for a
    wildcard or other address.
    """
    if settings.message_id_host:
        return settings.message_id_host
    host = urlsplit(f"https://{settings.host}").hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or socket.getfqdn()
    return "localhost" if address.is_loopback else socket.getfqdn()


@dataclass(frozen=True)
class Runtime:
    """Settings, database, clock, MessageId generator and the per-process CPA cache."""

    settings: Settings
    database: Database
    clock: Clock
    ids: IdGenerator
    agreements: AgreementCache

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        *,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
    ) -> Runtime:
        """The process's runtime; ``clock`` and ``ids`` are given only by tests."""
        return cls(
            settings=settings,
            database=database,
            clock=clock if clock is not None else SystemClock(),
            ids=ids if ids is not None else UuidIdGenerator(host=message_id_host(settings)),
            agreements=process_cache(database, max_cpa_bytes=settings.max_cpa_bytes),
        )
