"""Berichtuitwisselingen: list, show and change the exchange settings (docs/exchanges.md).

The GGk routing page sets per exchange *Uitwisseling via*, *CPA profiel*, *Status* and the StUF
and payload versions (Koppelvlakstandaard StUF-GGk, routering). The CLI and the API both change
them here, so every change is checked the same way and written to the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ggk_ebms.exchanges.model import Exchange
from ggk_ebms.services import audit
from ggk_ebms.services.context import NotFoundError, ServiceContext, ServiceError
from ggk_ebms.store.exchanges import ExchangeStore

__all__ = ["ExchangeView", "list_exchanges", "reset_exchange", "set_exchange", "show_exchange"]


@dataclass(frozen=True)
class ExchangeView:
    key: str
    product: str
    heen: str
    retour: str | None
    via: str
    status: str
    stuf_version: str
    payload_version: str | None  # None: every release
    cpa_id: str | None
    gemeentecodes: tuple[str, ...]  # empty: every gemeentecode served
    changed: tuple[str, ...]  # the settings changed from the shipped default
    samenvatting: str


def _view(exchange: Exchange, changed: Mapping[str, str | None]) -> ExchangeView:
    return ExchangeView(
        key=exchange.key,
        product=exchange.product.value,
        heen=exchange.heen,
        retour=exchange.retour,
        via=exchange.via.value,
        status=exchange.status.value,
        stuf_version=exchange.stuf_version.value,
        payload_version=exchange.payload_version,
        cpa_id=exchange.cpa_id,
        gemeentecodes=tuple(exchange.gemeentecodes),
        changed=tuple(sorted(changed)),
        samenvatting=exchange.describe(),
    )


def list_exchanges(ctx: ServiceContext) -> tuple[tuple[ExchangeView, ...], tuple[str, ...]]:
    """Every exchange in force, and the stored changes that no longer apply (warnings)."""
    store = ExchangeStore(ctx.database, ctx.clock)
    current, problems = store.current()
    changes = store.changes()
    return tuple(_view(e, changes.get(e.key, {})) for e in current), tuple(problems)


def show_exchange(ctx: ServiceContext, key: str) -> ExchangeView:
    """One exchange by key (WMO301/WMO302) or either berichttype."""
    store = ExchangeStore(ctx.database, ctx.clock)
    current, _ = store.current()
    exchange = current.get(key)
    if exchange is None:
        raise NotFoundError(f"geen uitwisseling {key!r}")
    return _view(exchange, store.changes().get(exchange.key, {}))


def set_exchange(ctx: ServiceContext, key: str, changes: Mapping[str, str | None]) -> ExchangeView:
    """Change only the settings given; every value is checked before anything is stored."""
    if not changes:
        raise ServiceError("geef minstens één instelling om te wijzigen")
    before = show_exchange(ctx, key)
    try:
        ExchangeStore(ctx.database, ctx.clock).set(key, changes)
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
    after = show_exchange(ctx, key)
    detail = "; ".join(f"{name}={value!r}" for name, value in sorted(changes.items()))
    audit.record(ctx, "exchange-set", f"uitwisseling {after.key}", f"{detail}; voor: {before.samenvatting}")
    return after


def reset_exchange(ctx: ServiceContext, key: str) -> ExchangeView:
    """Forget every change: back to the shipped default."""
    show_exchange(ctx, key)
    try:
        removed = ExchangeStore(ctx.database, ctx.clock).reset(key)
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
    after = show_exchange(ctx, key)
    audit.record(ctx, "exchange-reset", f"uitwisseling {after.key}", f"{removed} wijziging(en) vergeten")
    return after
