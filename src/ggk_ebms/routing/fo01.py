"""The Fo01 that the delivery would send for a gemeentecode and berichttype (``routes test``).

Pure: no I/O. It takes the same decisions, in the same order, as the delivery's inbound checks 5 to 7
(docs/stuf-routing.md) (``delivery.unwrap``) for what can be known without a message: the exchange rules first
(IB005 gemeentecode unknown or not served, IB004 berichttype of no exchange, IB023 exchange
inactief; docs/exchanges.md), then the routing table (its GGk code when it has one, as the
delivery sends, else its StUF code), the catalogue, and the sender's authorisation. What
depends on the message itself (envelope version, envelope kind, the zender's number form, a
duplicate) is not judged here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ggk_ebms.exchanges import rules as exchange_rules
from ggk_ebms.exchanges.rules import Rules
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Catalogue
from ggk_ebms.routing.table import Match, RoutingTable
from ggk_ebms.stuf.codes import StufCode

__all__ = ["Fo01", "expected_fo01"]


@dataclass(frozen=True)
class Fo01:
    """A refusal: the inbound check (docs/stuf-routing.md) that refuses, the foutcode of the Fo01 and why."""

    step: int
    code: str
    reason: str


def expected_fo01(
    rules: Rules,
    table: RoutingTable,
    gemeentecode: str,
    berichttype: str,
    *,
    match: Match | None = None,
    sender_ids: Sequence[str] = (),
    catalogue: Catalogue = DEFAULT_CATALOGUE,
) -> Fo01 | None:
    """The Fo01 the delivery would answer with, or None when it would deliver.

    ``sender_ids``: the sending party's OIN and/or CPAId; without them authorisation is not
    judged. ``match``: ``table.match(...)`` when the caller has it already."""
    exchange, refusal = rules.exchange_refusal(berichttype)
    gemeente = rules.gemeente_refusal(gemeentecode, exchange, fallback=table.served_gemeentecodes)
    if gemeente is not None:
        return Fo01(5, gemeente.code, gemeente.text)
    if refusal is not None:
        return Fo01(6, refusal.code, refusal.text)
    match = match if match is not None else table.match(gemeentecode, berichttype)
    if match.code is not None:
        step = 5 if match.code == StufCode.ONTVANGER_UNKNOWN else 6
        return Fo01(step, match.ggk_code or match.code, match.reason)
    if catalogue.get(berichttype) is None:
        return Fo01(6, exchange_rules.FUNCTIE_UNSUPPORTED, f"berichttype {berichttype} is not supported")
    if match.route is not None and sender_ids:
        verdicts = [table.authorize(sender, gemeentecode, match.route) for sender in sender_ids]
        if not any(v.allowed for v in verdicts):
            first = verdicts[0]
            return Fo01(7, first.ggk_code or first.code or StufCode.NOT_AUTHORISED, first.reason)
    return None
