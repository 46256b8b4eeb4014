"""The refusals an exchange and the served gemeentecodes impose, both ways. Pure: no I/O.

Every refusal carries the code of the official GGk Fo01 code table (GGk Fo01 foutcodetabel, current
generation), so what we answer reads like what the GGk itself answers:

- IB005 gemeentecode unknown / not served ("Gebruikte gemeentecode is niet bekend"), also for a
  code that is no CBS gemeentecode, and for a payload gemeente other than the envelope's;
- IB004 functie not supported (no exchange for the berichttype);
- IB023 functie not active (the exchange is ``inactief``);
- IB001 message does not fit the (envelope) XSD: the envelope generation is not the exchange's
  (the 2017-2018 table called this IB798, "StUF version differs from the configured one");
- IB014 payload does not fit the XSD: the payload release is not the exchange's;
- IB006 the combination of berichtcode and functie is not allowed (envelope functie vs payload);
- IB016 referentienummer not unique.

Outbound the same rules refuse before anything is sent (``OutboundRefused``), naming the code and
the setting to change, because the GGk manuals say the envelope gemeentecode must be one the
organisation is authorised for ("Gemeentecode in het bericht correspondeert niet met de ingelogde
gemeentecode").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from ggk_ebms.exchanges.model import DEFAULT_EXCHANGES, Exchange, ExchangeSet, Via
from ggk_ebms.gemeentecodes import GemeenteLijst, cbs_gemeentecodes
from ggk_ebms.stuf.generations import generation_of
from ggk_ebms.stuf.model import StufMessage

GEMEENTE_UNKNOWN: Final = "IB005"
FUNCTIE_UNSUPPORTED: Final = "IB004"
FUNCTIE_INACTIVE: Final = "IB023"
ENVELOPE_XSD: Final = "IB001"
PAYLOAD_XSD: Final = "IB014"
COMBINATION_NOT_ALLOWED: Final = "IB006"
ADDRESSEE_WRONG: Final = "IB010"
REFERENTIE_NOT_UNIQUE: Final = "IB016"


@dataclass(frozen=True)
class Refusal:
    code: str
    text: str


@dataclass(frozen=True)
class Rules:
    """What this installation serves: exchanges, gemeentecodes (settings) and the CBS list."""

    exchanges: ExchangeSet = DEFAULT_EXCHANGES
    gemeentecodes: frozenset[str] = frozenset()  # setting `served_gemeentecodes`; empty: routes file
    test_gemeentecodes: frozenset[str] = frozenset()  # no CBS code, but allowed (portal test 9999)
    cbs: GemeenteLijst = field(default_factory=cbs_gemeentecodes)

    @classmethod
    def of(
        cls,
        exchanges: ExchangeSet,
        gemeentecodes: Iterable[str],
        test_gemeentecodes: Iterable[str] = (),
        cbs: GemeenteLijst | None = None,
    ) -> Rules:
        return cls(
            exchanges, frozenset(gemeentecodes), frozenset(test_gemeentecodes), cbs or cbs_gemeentecodes()
        )

    def served(self, fallback: Iterable[str] = ()) -> frozenset[str]:
        """The gemeentecodes this installation serves: the setting, else ``fallback`` (routes file)."""
        return self.gemeentecodes or frozenset(fallback)

    def gemeente_refusal(
        self, gemeentecode: str, exchange: Exchange | None, *, fallback: Iterable[str] = ()
    ) -> Refusal | None:
        """IB005 when ``gemeentecode`` is no CBS code (nor a test code), or not served (here, or by
        the exchange). ``fallback``: the routing table's served codes when the setting is empty."""
        if gemeentecode not in self.cbs and gemeentecode not in self.test_gemeentecodes:
            return Refusal(
                GEMEENTE_UNKNOWN,
                f"gemeentecode {gemeentecode} is not in the CBS gemeentecode list {self.cbs.year} "
                "(nor in setting test_gemeentecodes)",
            )
        served = self.served(fallback)
        setting = (
            "setting served_gemeentecodes"
            if self.gemeentecodes
            else "the routes file's [endpoint] gemeentecodes"
        )
        if gemeentecode not in served:
            return Refusal(
                GEMEENTE_UNKNOWN,
                f"gemeentecode {gemeentecode} is not served by this installation ({setting}: "
                f"{', '.join(sorted(served)) or 'none'})",
            )
        if exchange is not None and exchange.gemeentecodes and gemeentecode not in exchange.gemeentecodes:
            return Refusal(
                GEMEENTE_UNKNOWN,
                f"gemeentecode {gemeentecode} is not served on exchange {exchange.key} (exchange setting "
                f"gemeentecodes: {', '.join(exchange.gemeentecodes)})",
            )
        return None

    def exchange_refusal(self, berichttype: str) -> tuple[Exchange | None, Refusal | None]:
        """The exchange of ``berichttype``; IB004 when there is none, IB023 when it is inactief."""
        exchange = self.exchanges.for_berichttype(berichttype)
        if exchange is None:
            return None, Refusal(FUNCTIE_UNSUPPORTED, f"berichttype {berichttype} belongs to no exchange")
        if not exchange.active:
            return exchange, Refusal(FUNCTIE_INACTIVE, f"exchange {exchange.key} is inactief")
        return exchange, None


def envelope_refusal(exchange: Exchange, stuf: StufMessage) -> Refusal | None:
    """IB001 when the envelope is not in the exchange's generation (StUF-GGk spec GGk0210/GGk0310: the portal
    fixes the envelope version per berichtuitwisseling, for sending and receiving)."""
    generation = generation_of(stuf.version)
    if generation is exchange.stuf_version:
        return None
    got = generation.value if generation is not None else (stuf.version.spec if stuf.version else "unknown")
    return Refusal(
        ENVELOPE_XSD,
        f"envelope is StUF-GGk {got}, exchange {exchange.key} accepts {exchange.stuf_version.value} only",
    )


def payload_refusal(exchange: Exchange, release: str) -> Refusal | None:
    """IB014 when the payload release is not the exchange's payload version."""
    if exchange.payload_version is None or release == exchange.payload_version:
        return None
    return Refusal(
        PAYLOAD_XSD,
        f"payload is release {release}, exchange {exchange.key} accepts XML {exchange.payload_version} only",
    )


def disagreement_code(rule: str) -> str:
    """The Fo01 code for a payload that contradicts its envelope (``payloads.detect`` rule names)."""
    if rule == "gemeentecode":
        return GEMEENTE_UNKNOWN
    if rule == "addressee":
        return ADDRESSEE_WRONG  # VECOZO CC09: addressee in header and envelope must agree
    return COMBINATION_NOT_ALLOWED  # functie, berichtcode, standaard, envelope kind


class OutboundRefused(Exception):
    """An outbound message that must not be sent; the text names the code and the setting."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(f"{refusal.code}: {refusal.text}")
        self.refusal = refusal


def check_outbound(
    rules: Rules,
    *,
    berichttype: str,
    gemeentecode: str,
    stuf: StufMessage | None,
    release: str | None,
    fallback_served: Iterable[str] = (),
    manual: bool = False,
) -> Exchange:
    """Every rule a message we are about to send must meet; raises ``OutboundRefused``."""
    exchange, refusal = rules.exchange_refusal(berichttype)
    if refusal is not None:
        raise OutboundRefused(Refusal(refusal.code, refusal.text + " (change with `ggk-ebms exchanges set`)"))
    assert exchange is not None
    if exchange.via is Via.PORTAAL and not manual:
        raise OutboundRefused(
            Refusal(
                FUNCTIE_INACTIVE,
                f"exchange {exchange.key} goes via Portaal: nothing is sent automatically, only by a "
                "manual aanlevering (or set it to Digikoppeling with `ggk-ebms exchanges set`)",
            )
        )
    found = rules.gemeente_refusal(gemeentecode, exchange, fallback=fallback_served)
    if found is not None:
        raise OutboundRefused(found)
    if stuf is not None:
        found = envelope_refusal(exchange, stuf)
        if found is not None:
            raise OutboundRefused(found)
    if release is not None:
        found = payload_refusal(exchange, release)
        if found is not None:
            raise OutboundRefused(found)
    return exchange
