"""Zorgaanbieder register use cases: import the CSV, list the register with what the traffic
tells (first and last message per AGB code), names for the berichtenlog, and the check an
outbound message gets (docs/zorgaanbieders.md)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ggk_ebms.services import audit, koppeltabel
from ggk_ebms.services.context import ServiceContext, ServiceError
from ggk_ebms.store.zorgaanbieders import RegisterEntry, ZorgaanbiederStore
from ggk_ebms.zorgaanbieders import RegisterError, parse_csv


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int
    errors: tuple[str, ...]


def import_csv(ctx: ServiceContext, data: bytes) -> ImportResult:
    try:
        parsed = parse_csv(data)
    except RegisterError as exc:
        raise ServiceError(f"zorgaanbieders niet ingelezen: {exc}") from None
    added, updated = ZorgaanbiederStore(ctx.database).upsert(parsed.rows, ctx.clock.now())
    audit.record(
        ctx,
        "zorgaanbieders-import",
        "zorgaanbieders",
        f"added={added} updated={updated} errors={len(parsed.errors)}",
    )
    return ImportResult(added, updated, parsed.errors)


def register(ctx: ServiceContext) -> list[RegisterEntry]:
    koppeltabel.catch_up(ctx.database, ctx.clock)
    return ZorgaanbiederStore(ctx.database).entries()


def names(ctx: ServiceContext, agbs: Collection[str]) -> dict[str, str]:
    return ZorgaanbiederStore(ctx.database).names(agbs)


def unknown_warning(ctx: ServiceContext, agb: str | None) -> str | None:
    """The verslag's warning for an outbound message to an AGB code never seen in the traffic and
    not in the register (a typing error in the AGB code, or an aanbieder not yet connected)."""
    if not agb:
        return None
    if ZorgaanbiederStore(ctx.database).known(agb):
        return None
    return (
        f"waarschuwing: AGB-code {agb} is onbekend "
        "(niet in het register en nooit eerder in het berichtenverkeer)"
    )
