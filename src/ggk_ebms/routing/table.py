"""Routes keyed on (gemeentecode, berichttype), most specific first, with sender authorisation.

The GGk routes on ``ontvanger/organisatie`` × ``functie`` and never opens the payload (stuf-ggk
GGk handleiding: routing); we do the same one hop further, from our endpoint to the domain application.
A route row mirrors the GGk portal's routing page (GGk handleiding: routing): per gemeente and berichttype an
*Uitwisseling via* channel, a *Status*, the StUF envelope version and the payload version.

Matching (GGk handleiding: routing; docs/stuf-routing.md inbound checks 5, 6 and 15): a gemeentecode we do not
serve is StUF010 (cf. IB005), a
berichttype not in the catalogue StUF037 (cf. IB004); otherwise the most specific *active* route
wins, exact/exact > exact/* > */exact > */*. Inactive routes are passed over with the reason kept
(only inactive ones: StUF037, cf. IB023). No route at all is no refusal to the sender: the message
is kept and an operator alerted (cf. IB102), since the fault is ours.

Authorisation (GGk handleiding: routing; docs/stuf-routing.md inbound check 7; StUF052): a route may list
``allowed_senders`` (OINs or CPAIds);
an empty list admits any sender whose scope (configured per sender, as the CPA itself does not say
which gemeenten it serves) covers the gemeentecode.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

from ggk_ebms.errors import ConfigError
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Catalogue
from ggk_ebms.stuf.codes import StufCode

WILDCARD: Final = "*"


class RouteStatus(StrEnum):
    ACTIEF = "actief"
    INACTIEF = "inactief"


class Channel(StrEnum):
    """*Uitwisseling via* on the GGk routing page."""

    DIGIKOPPELING = "Digikoppeling"
    PORTAAL = "Portaal"


@dataclass(frozen=True)
class DirectoryTarget:
    """Write the payload (and optionally the envelope and a metadata file) into a folder."""

    path: Path
    write_envelope: bool = False
    write_metadata: bool = True


@dataclass(frozen=True)
class HttpTarget:
    """POST the payload to a domain application, optionally over mutual TLS."""

    url: str
    client_cert: Path | None = None
    client_key: Path | None = None
    trust_store: Path | None = None


@dataclass(frozen=True)
class EbmsTarget:
    """Pass the message on over ebMS under another CPA (e.g. to a samenwerkingsverband)."""

    cpa_id: str
    service: str
    action: str


@dataclass(frozen=True)
class MailboxTarget:
    """Keep the message for collection (the portal's *Ophalen*, GGk handleiding: Ophalen/berichtenlog)."""


Target = DirectoryTarget | HttpTarget | EbmsTarget | MailboxTarget


@dataclass(frozen=True)
class Route:
    name: str
    gemeentecode: str  # 4-digit code or "*"
    berichttype: str  # functie such as WMO301, or "*"
    target: Target
    status: RouteStatus = RouteStatus.ACTIEF
    channel: Channel = Channel.DIGIKOPPELING
    stuf_version: str = "2.1"  # the portal's "StUF 2.1": the GGk envelope spec, not StUF 02.04
    payload_version: str | None = None  # "3.2"; None: whatever release arrives
    allowed_senders: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.status is RouteStatus.ACTIEF

    @property
    def key(self) -> str:
        return f"{self.gemeentecode}/{self.berichttype}"

    @property
    def specificity(self) -> int:
        """3 exact/exact, 2 exact/*, 1 */exact, 0 */*: the gemeente outranks the berichttype."""
        return (2 if self.gemeentecode != WILDCARD else 0) + (1 if self.berichttype != WILDCARD else 0)

    def covers(self, gemeentecode: str, berichttype: str) -> bool:
        return self.gemeentecode in (gemeentecode, WILDCARD) and self.berichttype in (berichttype, WILDCARD)


class Outcome(StrEnum):
    MATCHED = "matched"
    LESS_SPECIFIC = "less specific"
    INACTIVE = "inactive"


@dataclass(frozen=True)
class Considered:
    route: Route
    outcome: Outcome


@dataclass(frozen=True)
class Match:
    """The routing decision and how it came about; ``code`` set means refuse with that StUF code."""

    gemeentecode: str
    berichttype: str
    route: Route | None
    reason: str
    code: str | None = None  # StUF foutcode for a Fo01 to the sender, when the sender is at fault
    ggk_code: str | None = None  # the GGk's own code for the same situation, for operators
    considered: tuple[Considered, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.route is not None

    def explain(self) -> str:
        """One line for ``routes test``: the winner and why every other candidate lost."""
        parts = [self.reason]
        for item in self.considered:
            if item.outcome is Outcome.MATCHED:
                continue
            parts.append(f"route {item.route.name} ({item.route.key}) {item.outcome.value}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Authorization:
    allowed: bool
    reason: str
    code: str | None = None  # StUF052 when refused (StUF010/StUF037 for an unusable route)
    ggk_code: str | None = None  # IB002 / IB006 / IB007-like, for operators


class RoutingTable:
    """The routes of one endpoint plus the gemeentecodes it serves and each sender's scope."""

    def __init__(
        self,
        routes: Iterable[Route],
        served_gemeentecodes: Iterable[str],
        *,
        sender_scopes: Mapping[str, Iterable[str]] | None = None,
        catalogue: Catalogue = DEFAULT_CATALOGUE,
    ) -> None:
        self.routes = tuple(routes)
        self.served_gemeentecodes = frozenset(served_gemeentecodes)
        self.sender_scopes = {sender: frozenset(codes) for sender, codes in (sender_scopes or {}).items()}
        self.catalogue = catalogue
        names: set[str] = set()
        active_keys: dict[str, str] = {}
        for route in self.routes:
            if route.name in names:
                raise ConfigError(f"route name {route.name!r} is used twice")
            names.add(route.name)
            if route.active:
                other = active_keys.setdefault(route.key, route.name)
                if other != route.name:
                    raise ConfigError(
                        f"routes {other!r} and {route.name!r} are both active for {route.key}; deactivate one"
                    )

    def match(self, gemeentecode: str, berichttype: str) -> Match:
        """The route for a message: docs/stuf-routing.md inbound checks 5 (StUF010), 6 (StUF037) and 15."""
        if gemeentecode not in self.served_gemeentecodes:
            return Match(
                gemeentecode,
                berichttype,
                None,
                f"gemeentecode {gemeentecode} is not served by this endpoint",
                code=StufCode.ONTVANGER_UNKNOWN,
                ggk_code="IB005",
            )
        if berichttype not in self.catalogue:
            return Match(
                gemeentecode,
                berichttype,
                None,
                f"berichttype {berichttype} is not supported",
                code=StufCode.FUNCTIE_UNSUPPORTED,
                ggk_code="IB004",
            )
        candidates = sorted(
            (r for r in self.routes if r.covers(gemeentecode, berichttype)),
            key=lambda r: -r.specificity,
        )
        considered: list[Considered] = []
        winner: Route | None = None
        for route in candidates:
            if not route.active:
                considered.append(Considered(route, Outcome.INACTIVE))
            elif winner is None:
                winner = route
                considered.append(Considered(route, Outcome.MATCHED))
            else:
                considered.append(Considered(route, Outcome.LESS_SPECIFIC))
        if winner is not None:
            reason = f"route {winner.name} matched on {_describe(winner, gemeentecode, berichttype)}"
            return Match(gemeentecode, berichttype, winner, reason, considered=tuple(considered))
        if considered:  # only inactive routes: the functie is switched off for this gemeente
            return Match(
                gemeentecode,
                berichttype,
                None,
                f"no active route for {gemeentecode}/{berichttype}",
                code=StufCode.FUNCTIE_UNSUPPORTED,
                ggk_code="IB023",
                considered=tuple(considered),
            )
        return Match(
            gemeentecode,
            berichttype,
            None,
            f"no route for {gemeentecode}/{berichttype}: keep the message and alert an operator",
            ggk_code="IB102",
        )

    def authorize(self, sender: str, gemeentecode: str, route: Route) -> Authorization:
        """May ``sender`` (an OIN or CPAId) deliver a message for ``gemeentecode`` over ``route``?"""
        if gemeentecode not in self.served_gemeentecodes:
            return Authorization(
                False, f"gemeentecode {gemeentecode} is not served", StufCode.ONTVANGER_UNKNOWN, "IB005"
            )
        if not route.active:
            return Authorization(
                False, f"route {route.name} is inactive", StufCode.FUNCTIE_UNSUPPORTED, "IB023"
            )
        if route.allowed_senders:
            if sender in route.allowed_senders:
                return Authorization(True, f"sender {sender} is listed on route {route.name}")
            return Authorization(
                False,
                f"sender {sender} is not among the allowed senders of route {route.name}",
                StufCode.NOT_AUTHORISED,
                "IB006",
            )
        scope = self.sender_scopes.get(sender)
        if scope is None:
            return Authorization(
                False, f"sender {sender} is not authorised for GGk traffic", StufCode.NOT_AUTHORISED, "IB002"
            )
        if WILDCARD in scope or gemeentecode in scope:
            return Authorization(True, f"sender {sender} serves gemeentecode {gemeentecode}")
        return Authorization(
            False,
            f"sender {sender} does not serve gemeentecode {gemeentecode}",
            StufCode.NOT_AUTHORISED,
            "IB007",
        )


def _describe(route: Route, gemeentecode: str, berichttype: str) -> str:
    g = f"gemeentecode {gemeentecode}" if route.gemeentecode != WILDCARD else "any gemeentecode"
    b = f"berichttype {berichttype}" if route.berichttype != WILDCARD else "any berichttype"
    return f"{g} + {b}"
