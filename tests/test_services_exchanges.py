"""services.exchanges on SQLite and PostgreSQL: show by either berichttype, set only what is
given with an audit record naming the actor, refusals before anything is stored, reset."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ggk_ebms.clock import FixedClock
from ggk_ebms.config import Settings
from ggk_ebms.services import exchanges as service
from ggk_ebms.services.audit import AuditQuery, list_audit
from ggk_ebms.services.context import NotFoundError, ServiceContext, ServiceError
from ggk_ebms.store.db import Database


@pytest.fixture
def ctx(db: Database, tmp_path: Path) -> ServiceContext:
    clock = FixedClock(datetime(2026, 12, 5, 12, 0, tzinfo=UTC))
    return ServiceContext(database=db, settings=Settings(data_dir=tmp_path), actor="api:beheer", clock=clock)


def test_set_show_reset_with_audit(ctx: ServiceContext) -> None:
    items, warnings = service.list_exchanges(ctx)
    assert warnings == () and "JW303/JW304" in {e.key for e in items}
    default = service.show_exchange(ctx, "JW304")
    assert default.key == "JW303/JW304" and default.changed == ()

    changed = service.set_exchange(ctx, "JW303", {"via": "Portaal", "gemeentecodes": "0363,0014"})
    assert changed.via == "Portaal" and changed.gemeentecodes == ("0363", "0014")
    assert changed.changed == ("gemeentecodes", "via")
    assert service.show_exchange(ctx, "JW303/JW304") == changed

    with pytest.raises(ServiceError):
        service.set_exchange(ctx, "JW303", {"stuf_version": "ggk9999"})
    with pytest.raises(ServiceError):
        service.set_exchange(ctx, "JW303", {})
    with pytest.raises(NotFoundError):
        service.set_exchange(ctx, "XX999", {"via": "Portaal"})
    assert service.show_exchange(ctx, "JW303") == changed  # the refusals stored nothing

    back = service.reset_exchange(ctx, "JW303")
    assert back == default
    events = list_audit(ctx, AuditQuery()).events
    assert [(e.actor, e.action, e.subject) for e in events] == [
        ("api:beheer", "exchange-reset", "uitwisseling JW303/JW304"),
        ("api:beheer", "exchange-set", "uitwisseling JW303/JW304"),
    ]
    assert "gemeentecodes='0363,0014'" in (events[1].detail or "")
