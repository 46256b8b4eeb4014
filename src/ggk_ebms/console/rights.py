"""Who may do what in the console: roles, products and the berichttypes of each product (pure).

Roles follow the GGk portal: a gebruikersbeheerder manages accounts, a productbeheerder manages
routes and CPAs of their products and does the medewerker's work, a medewerker aanlevert,
reads the berichtenlog and collects from Ophalen for their products (docs/console.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Standaard

GEBRUIKERSBEHEERDER: Final = "gebruikersbeheerder"
PRODUCTBEHEERDER: Final = "productbeheerder"
MEDEWERKER: Final = "medewerker"
ROLES: Final = (GEBRUIKERSBEHEERDER, PRODUCTBEHEERDER, MEDEWERKER)

# Product code -> label as the GGk portal names it.
PRODUCTS: Final = {
    "iwmo": "iWmo",
    "ijw": "iJw",
    "ieb": "iEb",
    "pgb-wmo": "PGB-Wmo",
    "pgb-jw": "PGB-Jw",
}

_STANDAARD: Final = {Standaard.IWMO: "iwmo", Standaard.IJW: "ijw", Standaard.IEB: "ieb"}


def berichttypes_of(product: str) -> tuple[str, ...]:
    """The berichttypes of ``product`` in the message catalogue. The PGB products have no
    berichttypes in the catalogue yet (iStandaarden has not published them for the GGk), so their
    tabs show nothing rather than guess."""
    return tuple(sorted(e.berichttype for e in DEFAULT_CATALOGUE if _STANDAARD.get(e.standaard) == product))


def product_of(berichttype: str | None) -> str | None:
    entry = DEFAULT_CATALOGUE.get(berichttype) if berichttype else None
    return None if entry is None else _STANDAARD.get(entry.standaard)


def visible_berichttypes(products: Iterable[str]) -> tuple[str, ...]:
    """Every berichttype a user with ``products`` may see (an empty tuple sees nothing)."""
    return tuple(sorted({b for p in products for b in berichttypes_of(p)}))


def may_manage_users(role: str) -> bool:
    return role == GEBRUIKERSBEHEERDER


def may_manage_product(role: str) -> bool:
    """Routes and CPAs: productbeheerder (and gebruikersbeheerder, who also runs the installation)."""
    return role in (GEBRUIKERSBEHEERDER, PRODUCTBEHEERDER)


def covers_installation(gemeentecodes: frozenset[str] | None) -> bool:
    """An account without gemeentecode limits acts for every gemeente of the installation; only
    such an account uses the pages that change the whole installation (routes, CPAs, accounts),
    which are not per gemeente (docs/console.md "Rechten per gemeentecode")."""
    return gemeentecodes is None
