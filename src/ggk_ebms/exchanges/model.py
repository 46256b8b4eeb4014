"""Berichtuitwisselingen (exchanges) as configuration, and the rules they impose. Pure: no I/O.

On the GGk routing page every product lists its exchanges as a pair of berichttypen
("JW 301 / 302") with *Uitwisseling via* (Digikoppeling or Portaal), a *CPA profiel*, a *Status*
(Actief), the StUF envelope version and the payload (XML) version, e.g. "JW 303 / 304 (Portaal -
Actief - StUF 2.1 - XML 2.3)" (GGk handleiding: routing). Here an ``Exchange`` is exactly that row.
Routes ((gemeentecode, berichttype) -> target) refer to the exchange of their berichttype.

What an exchange decides (docs/exchanges.md):

- status ``inactief``: nothing is sent, and a received message is refused (cf. IB023);
- via ``Portaal``: nothing is sent automatically (only a manual aanlevering), and a received message
  is held in the mailbox for manual pick-up instead of going to the route's target;
- ``stuf_version``: the envelope generation we build, and the only one we accept (cf. IB798, now
  IB001 "Bericht voldoet niet aan XSD": another generation does not fit the configured XSD);
- ``payload_version``: the iStandaarden release we send and accept (cf. IB014);
- ``gemeentecodes``: narrows the gemeentecodes this installation serves for this exchange;
- ``cpa_id``: the CPA profile messages of this exchange go out under.

The shipped defaults (``default_exchanges``) are every
exchange the GGk manuals list (iWmo/iJw 3.2 message catalogue).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, PGB_FUNCTIES, Catalogue, Standaard
from ggk_ebms.stuf.generations import Generation, parse_generation


class Product(StrEnum):
    """The products of the GGk routing page (GGk handleiding: routing)."""

    IWMO = "iWmo"
    IJW = "iJw"
    IEB = "iEb"
    PGB_WMO = "PGB-Wmo"
    PGB_JW = "PGB-Jw"


class Via(StrEnum):
    """*Uitwisseling via* on the GGk routing page."""

    DIGIKOPPELING = "Digikoppeling"
    PORTAAL = "Portaal"


class Status(StrEnum):
    ACTIEF = "actief"
    INACTIEF = "inactief"


PRODUCT_STANDAARD: Final = {
    Product.IWMO: Standaard.IWMO,
    Product.IJW: Standaard.IJW,
    Product.IEB: Standaard.IEB,
    Product.PGB_WMO: Standaard.PGB_WMO,
    Product.PGB_JW: Standaard.PGB_JW,
}


@dataclass(frozen=True)
class Exchange:
    product: Product
    heen: str  # the initiating berichttype: WMO301, JW321, WMO401, PGBWMO-TKB
    retour: str | None  # its answer (JW302, WMO325); None when there is none (PGB)
    via: Via = Via.DIGIKOPPELING
    cpa_id: str | None = None  # the CPA profile; None: the CPA the routes or the store give
    status: Status = Status.ACTIEF
    stuf_version: Generation = Generation.GGK0210
    payload_version: str | None = None  # iStandaarden release "3.2"; None: not checked (PGB)
    gemeentecodes: tuple[str, ...] = ()  # empty: every gemeentecode this installation serves

    @property
    def key(self) -> str:
        """``WMO301/WMO302``, or the berichttype alone when there is no retour."""
        return self.heen if self.retour is None else f"{self.heen}/{self.retour}"

    @property
    def berichttypes(self) -> tuple[str, ...]:
        return (self.heen,) if self.retour is None else (self.heen, self.retour)

    @property
    def active(self) -> bool:
        return self.status is Status.ACTIEF

    def describe(self) -> str:
        """The routing page's one-liner: ``JW303/JW304 (Portaal - actief - StUF ggk0210 - XML 2.3)``."""
        xml = f"XML {self.payload_version}" if self.payload_version else "XML any"
        return f"{self.key} ({self.via.value} - {self.status.value} - StUF {self.stuf_version.value} - {xml})"

    def serves(self, gemeentecode: str, installation: frozenset[str]) -> bool:
        """Whether this exchange may carry messages for ``gemeentecode``."""
        if gemeentecode not in installation:
            return False
        return not self.gemeentecodes or gemeentecode in self.gemeentecodes


# Product, heen, retour, payload version: iWmo/iJw 3.2 message catalogue (iWmo/iJw 3.2; legacy 303/304 and the
# DBC declaratie 321/322 only in 2.x; iEb 1.0; PGB 1.0 without a pair).
_PAIRS: Final = (
    ("301", "302", "3.2"),
    ("305", "306", "3.2"),
    ("307", "308", "3.2"),
    ("315", "316", "3.2"),
    ("317", "318", "3.2"),
    ("319", "320", "3.2"),
    ("323", "325", "3.2"),
    ("303", "304", "2.3"),
)


def default_exchanges() -> tuple[Exchange, ...]:
    exchanges: list[Exchange] = []
    for product, prefix in ((Product.IWMO, "WMO"), (Product.IJW, "JW")):
        for heen, retour, release in _PAIRS:
            exchanges.append(
                Exchange(product, f"{prefix}{heen}", f"{prefix}{retour}", payload_version=release)
            )
    exchanges.append(Exchange(Product.IJW, "JW321", "JW322", payload_version="2.3"))
    exchanges.append(Exchange(Product.IEB, "WMO401", "WMO402", payload_version="1.0"))
    exchanges.append(Exchange(Product.IEB, "WMO403", "WMO404", payload_version="1.0"))
    for product, standaard in ((Product.PGB_WMO, Standaard.PGB_WMO), (Product.PGB_JW, Standaard.PGB_JW)):
        for berichttype in PGB_FUNCTIES[standaard]:
            exchanges.append(Exchange(product, berichttype, None))
    return tuple(exchanges)


class ExchangeSet:
    """The exchanges in force, looked up by key or by any of their berichttypen."""

    def __init__(self, exchanges: Iterable[Exchange]) -> None:
        self._by_key: dict[str, Exchange] = {}
        self._by_berichttype: dict[str, Exchange] = {}
        for exchange in exchanges:
            if exchange.key in self._by_key:
                raise ValueError(f"exchange {exchange.key} is configured twice")
            self._by_key[exchange.key] = exchange
            for berichttype in exchange.berichttypes:
                other = self._by_berichttype.setdefault(berichttype, exchange)
                if other is not exchange:
                    raise ValueError(
                        f"berichttype {berichttype} is in exchanges {other.key} and {exchange.key}"
                    )

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> Exchange | None:
        """By key (``JW301/JW302``), by heen alone (``JW301``) or by retour (``JW302``)."""
        return self._by_key.get(key) or self._by_berichttype.get(key.upper() if key.isascii() else key)

    def for_berichttype(self, berichttype: str) -> Exchange | None:
        return self._by_berichttype.get(berichttype)


DEFAULT_EXCHANGES: Final = ExchangeSet(default_exchanges())


def check_consistent(exchanges: ExchangeSet, catalogue: Catalogue = DEFAULT_CATALOGUE) -> list[str]:
    """Problems with a set of exchanges: berichttypen the catalogue does not know, products that do
    not fit the berichttype, catalogue berichttypen that belong to no exchange."""
    problems: list[str] = []
    covered: set[str] = set()
    for exchange in exchanges:
        for berichttype in exchange.berichttypes:
            covered.add(berichttype)
            entry = catalogue.get(berichttype)
            if entry is None:
                problems.append(f"exchange {exchange.key}: berichttype {berichttype} is not in the catalogue")
            elif entry.standaard is not PRODUCT_STANDAARD[exchange.product]:
                problems.append(
                    f"exchange {exchange.key}: {berichttype} is {entry.standaard.value}, "
                    f"not product {exchange.product.value}"
                )
    for entry in catalogue:
        if entry.berichttype not in covered:
            problems.append(f"berichttype {entry.berichttype} belongs to no exchange")
    return problems


# --- changes an operator makes (`exchanges set`, stored per key) ---------------------------------

FIELDS: Final = ("via", "cpa_id", "status", "stuf_version", "payload_version", "gemeentecodes")


def apply_changes(exchange: Exchange, changes: Mapping[str, str | None]) -> Exchange:
    """``exchange`` with operator changes applied; text values as stored. Raises ValueError."""
    values: dict[str, object] = {}
    for name, raw in changes.items():
        if name not in FIELDS:
            raise ValueError(f"exchange setting {name!r} is not one of {', '.join(FIELDS)}")
        values[name] = _convert(name, raw)
    return dataclasses.replace(exchange, **values)  # type: ignore[arg-type]


def _convert(name: str, raw: str | None) -> object:
    text = (raw or "").strip()
    if name == "via":
        for via in Via:
            if via.value.lower() == text.lower():
                return via
        raise ValueError(f"via {raw!r} is not Digikoppeling or Portaal")
    if name == "status":
        try:
            return Status(text.lower())
        except ValueError:
            raise ValueError(f"status {raw!r} is not actief or inactief") from None
    if name == "stuf_version":
        return parse_generation(text)
    if name == "payload_version":
        if not text or text in ("*", "any"):
            return None
        major, dot, minor = text.partition(".")
        if not (dot and major.isdigit() and minor.isdigit()):
            raise ValueError(f"payload version {raw!r} is not a release such as 3.2")
        return f"{int(major)}.{int(minor)}"
    if name == "cpa_id":
        return text or None
    # gemeentecodes: comma separated, each four digits
    codes = tuple(code.strip() for code in text.split(",") if code.strip())
    for code in codes:
        if len(code) != 4 or not code.isdigit():
            raise ValueError(f"gemeentecode {code!r} is not four digits")
    return codes


def with_changes(
    base: Iterable[Exchange], stored: Mapping[str, Mapping[str, str | None]]
) -> tuple[ExchangeSet, list[str]]:
    """The defaults with the stored changes applied, and a problem per change that no longer fits."""
    problems: list[str] = []
    result: list[Exchange] = []
    keys = set()
    for exchange in base:
        keys.add(exchange.key)
        changes = stored.get(exchange.key)
        if changes:
            try:
                exchange = apply_changes(exchange, changes)
            except ValueError as exc:
                problems.append(f"exchange {exchange.key}: stored setting ignored: {exc}")
        result.append(exchange)
    problems.extend(
        f"stored settings for unknown exchange {key} ignored" for key in stored if key not in keys
    )
    return ExchangeSet(result), problems
