"""Routeren: change one route of the table in force instead of re-importing the whole file.

The portal's routing page sets per gemeente and berichttype the channel, status and versions
(GGk handleiding: routing); here ``set_route`` adds or changes one route, ``disable_route`` and
``enable_route`` switch one. Each change is checked by ``parse_routes`` like an import, stored as
a new routing table (the earlier ones stay for the record) and written to the audit trail.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ggk_ebms.routing.write import dump_routes
from ggk_ebms.services import audit
from ggk_ebms.services.context import NotFoundError, ServiceContext, ServiceError
from ggk_ebms.store.routes import RouteStore, StoredRouteSet

__all__ = ["RouteChange", "RouteChanged", "TargetSpec", "disable_route", "enable_route", "set_route"]


@dataclass(frozen=True)
class TargetSpec:
    """A target as routes.toml writes it: type directory | http | ebms | mailbox and its keys."""

    type: str
    path: str | None = None
    url: str | None = None
    cpa_id: str | None = None
    service: str | None = None
    action: str | None = None
    write_envelope: bool | None = None
    write_metadata: bool | None = None

    def as_toml(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class RouteChange:
    """The fields of one route; None keeps the current value of an existing route."""

    name: str
    gemeentecode: str | None = None
    berichttype: str | None = None
    target: TargetSpec | None = None
    status: str | None = None  # actief | inactief
    channel: str | None = None  # Digikoppeling | Portaal
    stuf_version: str | None = None
    payload_version: str | None = None
    allowed_senders: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RouteChanged:
    route_set: int  # the new routing table in force
    name: str
    created: bool
    before: str | None  # the route as it was (TOML), None when new
    after: str


def _current(ctx: ServiceContext) -> tuple[StoredRouteSet, dict[str, Any]]:
    stored = RouteStore(ctx.database, ctx.clock).current()
    if stored is None:
        raise ServiceError("er is nog geen routeringstabel; importeer er een met `ggk-ebms routes import`")
    return stored, tomllib.loads(stored.text)


def _store(
    ctx: ServiceContext,
    stored: StoredRouteSet,
    document: dict[str, Any],
    action: str,
    name: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> RouteChanged:
    text = dump_routes(document)
    base = Path(stored.base_dir) if stored.base_dir else None
    source = stored.source if stored.source.endswith("(gewijzigd)") else f"{stored.source} (gewijzigd)"
    new, _ = RouteStore(ctx.database, ctx.clock).replace(text, source=source, base_dir=base)
    before_text = dump_routes({"route": [before]}) if before is not None else None
    after_text = dump_routes({"route": [after]})
    audit.record(
        ctx,
        action,
        f"route {name}",
        f"routeringstabel {new.pk}; voor: {before_text or '(nieuw)'}; na: {after_text}",
    )
    return RouteChanged(new.pk, name, before is None, before_text, after_text)


def _find(document: dict[str, Any], name: str) -> dict[str, Any] | None:
    for route in document.get("route", []):
        if isinstance(route, dict) and route.get("name") == name:
            return route
    return None


def set_route(ctx: ServiceContext, change: RouteChange) -> RouteChanged:
    """Add the route ``change.name`` or change the fields given. ConfigError when the result is
    not a valid table (with the same line-level text as an import)."""
    stored, document = _current(ctx)
    routes = document.setdefault("route", [])
    existing = _find(document, change.name)
    before = dict(existing) if existing is not None else None
    route = existing if existing is not None else {"name": change.name}
    if existing is None:
        if change.gemeentecode is None or change.berichttype is None or change.target is None:
            raise ServiceError("een nieuwe route heeft gemeentecode, berichttype en een doel nodig")
        routes.append(route)
    updates: dict[str, Any] = {
        "gemeentecode": change.gemeentecode,
        "berichttype": change.berichttype,
        "status": change.status,
        "channel": change.channel,
        "stuf_version": change.stuf_version,
        "payload_version": change.payload_version,
        "allowed_senders": list(change.allowed_senders) if change.allowed_senders is not None else None,
        "target": change.target.as_toml() if change.target is not None else None,
    }
    for key, value in updates.items():
        if value is not None:
            route[key] = value
    return _store(ctx, stored, document, "route-set", change.name, before, dict(route))


def _switch(ctx: ServiceContext, name: str, status: str, action: str) -> RouteChanged:
    stored, document = _current(ctx)
    route = _find(document, name)
    if route is None:
        raise NotFoundError(f"geen route {name!r} in de routeringstabel")
    before = dict(route)
    route["status"] = status
    return _store(ctx, stored, document, action, name, before, dict(route))


def disable_route(ctx: ServiceContext, name: str) -> RouteChanged:
    return _switch(ctx, name, "inactief", "route-disable")


def enable_route(ctx: ServiceContext, name: str) -> RouteChanged:
    return _switch(ctx, name, "actief", "route-enable")
