"""What every use case gets: the database, the settings, a clock, an id source and who acts."""

from __future__ import annotations

from dataclasses import dataclass, field

from ggk_ebms.clock import Clock, IdGenerator, SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.store.db import Database


class ServiceError(GgkEbmsError):
    """A use case refused its input; the text is fit for the operator (Dutch)."""


class NotFoundError(ServiceError):
    """The thing asked for does not exist (HTTP 404 for the API)."""


@dataclass(frozen=True)
class ServiceContext:
    database: Database
    settings: Settings
    actor: str  # who acts: an OS user for the CLI, the authenticated user for the API
    clock: Clock = field(default_factory=SystemClock)
    ids: IdGenerator = field(default_factory=UuidIdGenerator)
    # The gemeentecodes the actor may act for (an API token's or account's rights,
    # docs/koppeltabel.md "Rights per gemeentecode"); None: every gemeente of the installation.
    gemeentecodes: frozenset[str] | None = None

    def may_act_for(self, gemeentecode: str | None) -> bool:
        return self.gemeentecodes is None or (gemeentecode is not None and gemeentecode in self.gemeentecodes)
