"""What the product tabs share: the product and role checks, form and query helpers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import web

from ggk_ebms.console.rights import PRODUCTS, berichttypes_of, covers_installation, may_manage_product
from ggk_ebms.console.web import BASE, Who, user_context
from ggk_ebms.services.context import ServiceContext, ServiceError

Page = Callable[[web.Request, Who], Awaitable[web.StreamResponse]]
_CHUNK = 256 * 1024


class ProductTab:
    def __init__(self, forbidden: type[Exception]) -> None:
        self.forbidden = forbidden

    def product(self, request: web.Request, who: Who) -> tuple[str, tuple[str, ...], ServiceContext]:
        product = request.match_info["product"]
        if product not in PRODUCTS:
            raise web.HTTPNotFound()
        if product not in who.session.user.products:
            raise self.forbidden(f"U heeft geen rechten voor {PRODUCTS[product]}.")
        return product, berichttypes_of(product), user_context(request, who)

    def manager(self, who: Who) -> None:
        if not may_manage_product(who.session.user.role):
            raise self.forbidden("Alleen een productbeheerder mag dit wijzigen.")
        self.whole_installation(who)

    def whole_installation(self, who: Who) -> None:
        """Routes and CPAs are of the whole installation, not of one gemeente."""
        if not covers_installation(who.session.user.gemeentecodes):
            raise self.forbidden("Deze pagina is alleen voor een account voor alle gemeenten.")


def tab_url(product: str, tab: str) -> str:
    return f"{BASE}/p/{product}/{tab}"


def day(value: str | None, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ServiceError(f"datum {value!r} is geen geldige datum (jjjj-mm-dd)") from None
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)


def shown(request: web.Request) -> dict[str, str]:
    """The filters as given (for the paging and export links), without empty ones and the offset."""
    return {k: v for k, v in request.query.items() if v and k != "offset"}


def spool(source: BinaryIO, target: Path, limit: int) -> None:
    size = 0
    with target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ServiceError(f"het bestand is groter dan {limit} bytes")
            out.write(chunk)


def ids(form: Any) -> list[int]:
    ids = []
    for value in form.getall("id", []):
        if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
            raise ServiceError("ongeldige selectie")
        ids.append(int(value))
    if not ids:
        raise ServiceError("geen berichten gekozen")
    return ids
