"""A realistic week of iJw/iWmo traffic for the Ketendata tests, built here from element names.

The payloads follow the iWmo/iJw 3.2 message structure (header, client, relations, contacts,
products, declaratie clients and prestaties). Names and BSNs are invented for these tests; the
BSNs pass the elfproef so the scan for BSNs in the output has something real to find.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree

from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.lifecycle import Event
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.stuf.envelope import build_di01
from ggk_ebms.stuf.model import Systeem
from tests.message_support import store_di01_envelope

GEMEENTECODE = "0363"
AGB_A = "12345678"
AGB_B = "87654321"
# Invented clients: (BSN passing the elfproef, given name, surname).
CLIENTS = (("123456782", "Jolanda", "Zwanenburg"), ("111222333", "Ferdinand", "Oudekerk"))
RELATIE_NAME = ("Gijsbertha", "Ravensbergen")
NAMES = {n for _, *names in CLIENTS for n in names} | set(RELATIE_NAME) | {"Hoefslag 12", "Waddinxveen"}
BSNS = {bsn for bsn, _, _ in CLIENTS}

# The events that take a freshly stored message to the status a test asks for.
_EVENTS_TO: dict[str, tuple[Event, ...]] = {
    "Processed": (Event.SETTLED,),
    "Forwarded": (Event.FORWARDED,),
    "Failed": (Event.NOT_DELIVERED,),
    "Sending": (Event.ATTEMPT_STARTED,),
    "Delivered": (Event.ATTEMPT_STARTED, Event.ACCEPTED),
}


def elfproef(number: str) -> bool:
    if len(number) != 9 or not number.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:8], range(9, 1, -1), strict=True)) - int(number[8])
    return total % 11 == 0


def _ns(standaard: str, berichttype: str) -> tuple[str, str]:
    std = "ijw" if standaard == "JW" else "iwmo"
    return (
        f"http://www.istandaarden.nl/{std}/3_2/{berichttype.lower()}/schema",
        f"http://www.istandaarden.nl/{std}/3_2/basisschema/schema",
    )


class _Builder:
    def __init__(self, berichttype: str) -> None:
        self.std = "JW" if berichttype.startswith("JW") else "WMO"
        self.msg, self.basis = _ns(self.std, berichttype)

    def m(self, parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        el = etree.SubElement(parent, f"{{{self.msg}}}{name}")
        el.text = text
        return el

    def b(self, parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        el = etree.SubElement(parent, f"{{{self.basis}}}{name}")
        el.text = text
        return el


CODES = {
    "JW301": "436",
    "JW305": "438",
    "JW307": "440",
    "WMO301": "414",
    "WMO315": "444",
    "JW323": "490",
}


def _root(berichttype: str, afzender: str, ontvanger: str, ident: str, dag: str) -> tuple[_Builder, Any]:
    bld = _Builder(berichttype)
    root = etree.Element(f"{{{bld.msg}}}Bericht", nsmap={"m": bld.msg, "b": bld.basis})
    header = bld.m(root, "Header")
    bld.m(header, "BerichtCode", CODES[berichttype])
    bld.m(header, "BerichtVersie", "3")
    bld.m(header, "BerichtSubversie", "2")
    bld.m(header, "Afzender", afzender)
    bld.m(header, "Ontvanger", ontvanger)
    bi = bld.m(header, "BerichtIdentificatie")
    bld.b(bi, "Identificatie", ident)
    bld.b(bi, "Dagtekening", dag)
    return bld, root


def _client(bld: _Builder, parent: Any, client: tuple[str, str, str], *, full: bool) -> Any:
    bsn, given, surname = client
    el = bld.m(parent, "Client")
    bld.m(el, "Bsn", bsn)
    gd = bld.m(el, "Geboortedatum")
    bld.b(gd, "Datum", "2011-03-09")
    bld.m(el, "Geslacht", "2")
    naam = bld.m(el, "Naam")
    gn = bld.b(naam, "Geslachtsnaam")
    bld.b(gn, "Achternaam", surname)
    bld.b(naam, "Voornamen", given)
    if full:
        bld.m(el, "JuridischeStatus", "01")
        relaties = bld.m(el, "Relaties")
        rel = bld.m(relaties, "Relatie")
        bld.m(rel, "Nummer", "1")
        bld.m(rel, "Soort", "02")
        rn = bld.m(rel, "Naam")
        rgn = bld.b(rn, "Geslachtsnaam")
        bld.b(rgn, "Achternaam", RELATIE_NAME[1])
        bld.b(rn, "Voornamen", RELATIE_NAME[0])
        contact = bld.m(rel, "Contact")
        bld.m(contact, "Soort", "01")
        bld.m(contact, "Emailadres", "relatie@example.test")
        gegevens = bld.m(el, "Contactgegevens")
        for soort in ("01", "02"):
            c = bld.m(gegevens, "Contact")
            bld.m(c, "Soort", soort)
            adres = bld.m(c, "Adres")
            bld.b(adres, "Straatnaam", "Hoefslag 12")
            bld.b(adres, "Postcode", "2741AB")
            bld.b(adres, "Plaatsnaam", "Waddinxveen")
        bld.m(el, "Commentaar", f"belt {given} {surname} terug")
    return el


def jw301(ident: str, client: tuple[str, str, str], toewijzingen: list[str], agb: str = AGB_A) -> bytes:
    bld, root = _root("JW301", GEMEENTECODE, agb, ident, "2026-11-30")
    el = _client(bld, root, client, full=True)
    products = bld.m(el, "ToegewezenProducten")
    for i, nummer in enumerate(toewijzingen):
        tp = bld.m(products, "ToegewezenProduct")
        bld.m(tp, "ToewijzingNummer", nummer)
        bld.m(tp, "ReferentieAanbieder", f"AB-{nummer}")
        product = bld.m(tp, "Product")
        bld.b(product, "Categorie", "45")
        bld.b(product, "Code", f"45A0{i}")
        bld.m(tp, "Toewijzingsdatum", "2026-11-30")
        bld.m(tp, "Ingangsdatum", "2026-12-01")
        omvang = bld.m(tp, "Omvang")
        bld.b(omvang, "Volume", "4")
        bld.b(omvang, "Eenheid", "04")
        bld.b(omvang, "Frequentie", "2")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def wmo301(ident: str, client: tuple[str, str, str], nummer: str) -> bytes:
    bld, root = _root("WMO301", GEMEENTECODE, AGB_B, ident, "2026-12-03")
    el = _client(bld, root, client, full=False)
    beschikking = bld.m(el, "Beschikking")
    bld.m(beschikking, "BeschikkingNummer", "BS-2026-0042")
    bld.m(beschikking, "Afgiftedatum", "2026-12-02")
    products = bld.m(el, "ToegewezenProducten")
    tp = bld.m(products, "ToegewezenProduct")
    bld.m(tp, "ToewijzingNummer", nummer)
    bld.m(tp, "Ingangsdatum", "2026-12-07")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def jw305(ident: str, client: tuple[str, str, str], nummer: str) -> bytes:
    bld, root = _root("JW305", AGB_A, GEMEENTECODE, ident, "2026-12-01")
    el = _client(bld, root, client, full=False)
    starts = bld.m(el, "StartProducten")
    sp = bld.m(starts, "StartProduct")
    bld.m(sp, "ToewijzingNummer", nummer)
    bld.m(sp, "Begindatum", "2026-12-01")
    bld.m(sp, "StatusAanlevering", "1")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def jw307(ident: str, client: tuple[str, str, str], nummer: str) -> bytes:
    bld, root = _root("JW307", AGB_A, GEMEENTECODE, ident, "2026-12-04")
    el = _client(bld, root, client, full=False)
    stops = bld.m(el, "StopProducten")
    sp = bld.m(stops, "StopProduct")
    bld.m(sp, "ToewijzingNummer", nummer)
    bld.m(sp, "Einddatum", "2026-12-04")
    bld.m(sp, "RedenBeeindiging", "02")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def wmo315(ident: str, client: tuple[str, str, str]) -> bytes:
    bld, root = _root("WMO315", AGB_B, GEMEENTECODE, ident, "2026-12-02")
    el = _client(bld, root, client, full=False)
    products = bld.m(el, "AangevraagdeProducten")
    for code in ("02A01", "02A02"):
        ap = bld.m(products, "AangevraagdProduct")
        bld.m(ap, "ReferentieAanbieder", f"REQ-{code}")
        product = bld.b(bld.m(ap, "Product"), "Code", code)
        del product
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def jw323(ident: str) -> bytes:
    bld, root = _root("JW323", AGB_A, GEMEENTECODE, ident, "2026-12-05")
    clienten = bld.m(root, "Clienten")
    for n, client in enumerate(CLIENTS):
        el = bld.m(clienten, "Client")
        bld.m(el, "Bsn", client[0])
        prestaties = bld.m(el, "Prestaties")
        for k in range(2):
            p = bld.m(prestaties, "Prestatie")
            bld.m(p, "ReferentieNummer", f"PR-{n}-{k}")
            bld.m(p, "ToewijzingNummer", f"30020{n}")
            bld.m(p, "GeleverdVolume", str(k + 3))
            bld.m(p, "IngediendBedrag", "12500")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@dataclass
class Traffic:
    """Stores messages as the endpoint does: received ones, and sent ones once Delivered."""

    db: Database
    clock: FixedClock
    ids: SequenceIdGenerator = field(default_factory=lambda: SequenceIdGenerator())
    message_ids: dict[str, list[str]] = field(default_factory=dict)

    def _store(self, label: str, payload: bytes, functie: str, *, direction: str, status: str) -> int:
        zender, ontvanger = (AGB_A, GEMEENTECODE) if direction == "in" else (GEMEENTECODE, AGB_A)
        envelope = build_di01(
            zender=Systeem(zender, "Zorgsysteem"),
            ontvanger=Systeem(ontvanger, "GGk"),
            functie=functie,
            payload=payload,
            ids=self.ids,
            tijdstip=self.clock.now(),
            functie_versie=3,
            functie_subversie=2,
        ).data
        pk, message_id = store_di01_envelope(self.db, self.clock, envelope, direction, host="ketendata.test")
        self.message_ids.setdefault(label, []).append(message_id)
        store = MessageStore(self.db, self.clock)
        new_status = "Received" if direction == "in" else "Created"
        # Through the lifecycle's own events, as the workers would (docs/rules.md).
        for event in _EVENTS_TO[status] if status != new_status else ():
            store.transition(pk, event, reason="ketendata test traffic")
        return pk

    def received(self, label: str, payload: bytes, functie: str, status: str = "Processed") -> int:
        return self._store(label, payload, functie, direction="in", status=status)

    def sent(self, label: str, payload: bytes, functie: str, status: str = "Delivered") -> int:
        return self._store(label, payload, functie, direction="out", status=status)


# Monday 30 November 2026, 09:00 Amsterdam (08:00 UTC): the week before Sunday 6 December.
WEEK_START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def a_week(traffic: Traffic) -> None:
    """Monday to Saturday: toewijzingen, a resend, start/stop, a verzoek, a declaratie."""
    c1, c2 = CLIENTS
    traffic.clock.at = WEEK_START
    traffic.sent("jw301", jw301("T-0001", c1, ["300200", "300201"]), "JW301")
    traffic.clock.advance(timedelta(hours=2))
    # The same JW301 again (a resend after a time-out): a new ebMS and StUF message, same content.
    traffic.sent("jw301-resend", jw301("T-0001", c1, ["300200", "300201"]), "JW301")
    traffic.clock.advance(timedelta(days=1))
    traffic.received("jw305", jw305("S-77", c1, "300200"), "JW305")
    traffic.clock.advance(timedelta(days=1))
    traffic.received("wmo315", wmo315("V-5", c2), "WMO315")
    # A message refused by the endpoint did not pass the GGk: not in the set.
    traffic.received("refused", jw305("S-78", c2, "300209"), "JW305", status="Failed")
    traffic.clock.advance(timedelta(days=1))
    traffic.sent("wmo301", wmo301("T-0002", c2, "400100"), "WMO301")
    # A sent message not delivered (yet) did not pass either.
    traffic.sent("undelivered", wmo301("T-0003", c2, "400101"), "WMO301", status="Sending")
    traffic.clock.advance(timedelta(days=1))
    traffic.received("jw307", jw307("S-79", c1, "300201"), "JW307")
    traffic.clock.advance(timedelta(days=1))
    traffic.received("jw323", jw323("D-2026-12"), "JW323")
