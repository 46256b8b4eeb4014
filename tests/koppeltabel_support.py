"""Related traffic for the koppeltabel tests: heen- and retourberichten in real StUF-GGk envelopes,
stored as the endpoint stores them. Payloads reuse the Ketendata test builders and add the retour,
verzoek and declaratie-antwoord messages built here from the iWmo/iJw 3.2 element names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.store.db import Database
from ggk_ebms.stuf.envelope import build_di01, build_du01, build_fo01
from ggk_ebms.stuf.model import Systeem
from tests.ketendata_support import AGB_A, GEMEENTECODE, _Builder
from tests.message_support import store_di01_envelope

RETOUR_CODES = {"JW302": "437", "JW316": "447", "JW325": "491", "JW315": "446", "JW301": "436"}


def _header(
    bld: _Builder, root: etree._Element, code: str, afzender: str, ontvanger: str, ident: str
) -> None:
    header = bld.m(root, "Header")
    bld.m(header, "BerichtCode", code)
    bld.m(header, "BerichtVersie", "3")
    bld.m(header, "BerichtSubversie", "2")
    bld.m(header, "Afzender", afzender)
    bld.m(header, "Ontvanger", ontvanger)
    bi = bld.m(header, "BerichtIdentificatie")
    bld.b(bi, "Identificatie", ident)
    bld.b(bi, "Dagtekening", "2026-12-01")


def _new(berichttype: str) -> tuple[_Builder, etree._Element]:
    bld = _Builder(berichttype)
    return bld, etree.Element(f"{{{bld.msg}}}Bericht", nsmap={"m": bld.msg, "b": bld.basis})


def retour(berichttype: str, heen_ident: str, gemeente: str = GEMEENTECODE, agb: str = AGB_A) -> bytes:
    """A retour (JW302, JW316): the heen header verbatim plus IdentificatieRetour."""
    bld, root = _new(berichttype)
    heen_from_gemeente = berichttype in ("JW302", "JW320")
    afzender, ontvanger = (gemeente, agb) if heen_from_gemeente else (agb, gemeente)
    _header(bld, root, RETOUR_CODES[berichttype], afzender, ontvanger, heen_ident)
    header = root[0]
    bld.m(header, "IdentificatieRetour", f"R-{heen_ident}")
    bld.m(header, "DagtekeningRetour", "2026-12-02")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def jw315(ident: str, referenties: list[str], gemeente: str = GEMEENTECODE, agb: str = AGB_A) -> bytes:
    bld, root = _new("JW315")
    _header(bld, root, "446", agb, gemeente, ident)
    client = bld.m(root, "Client")
    bld.m(client, "Bsn", "123456782")
    products = bld.m(client, "AangevraagdeProducten")
    for ref in referenties:
        ap = bld.m(products, "AangevraagdProduct")
        bld.m(ap, "ReferentieAanbieder", ref)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def jw325(ident: str, declaratie_ident: str, gemeente: str = GEMEENTECODE, agb: str = AGB_A) -> bytes:
    """A declaratie-antwoord: its own header (Afzender = gemeente) and DeclaratieIdentificatie."""
    bld, root = _new("JW325")
    _header(bld, root, "491", gemeente, agb, ident)
    bld.m(root[0], "DeclaratieIdentificatie", declaratie_ident)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@dataclass
class Traffic:
    """Stores StUF messages as the endpoint does; remembers each one's referentienummer."""

    db: Database
    clock: FixedClock
    ids: SequenceIdGenerator = field(default_factory=lambda: SequenceIdGenerator())
    refs: dict[int, str] = field(default_factory=dict)
    message_ids: dict[int, str] = field(default_factory=dict)

    def _parties(self, direction: str, gemeente: str, agb: str) -> tuple[Systeem, Systeem]:
        g, a = Systeem(gemeente, "GGk"), Systeem(agb, "Zorgsysteem")
        return (a, g) if direction == "in" else (g, a)

    def di01(
        self, payload: bytes, functie: str, direction: str, gemeente: str = GEMEENTECODE, agb: str = AGB_A
    ) -> int:
        zender, ontvanger = self._parties(direction, gemeente, agb)
        built = build_di01(
            zender=zender,
            ontvanger=ontvanger,
            functie=functie,
            payload=payload,
            ids=self.ids,
            tijdstip=self.clock.now(),
            functie_versie=3,
            functie_subversie=2,
        )
        return self._store(built.data, built.referentienummer, direction)

    def du01(
        self,
        payload: bytes,
        functie: str,
        direction: str,
        answers: int,
        gemeente: str = GEMEENTECODE,
        agb: str = AGB_A,
    ) -> int:
        zender, ontvanger = self._parties(direction, gemeente, agb)
        built = build_du01(
            zender=zender,
            ontvanger=ontvanger,
            functie=functie,
            payload=payload,
            cross_ref=self.refs[answers],
            ids=self.ids,
            tijdstip=self.clock.now(),
            functie_versie=3,
            functie_subversie=2,
        )
        return self._store(built.data, built.referentienummer, direction)

    def fo01(self, direction: str, answers: int, gemeente: str = GEMEENTECODE, agb: str = AGB_A) -> int:
        zender, ontvanger = self._parties(direction, gemeente, agb)
        built = build_fo01(
            zender=zender,
            ontvanger=ontvanger,
            cross_ref=self.refs[answers],
            code="StUF055",
            omschrijving="Bericht voldoet niet aan het schema",
            ids=self.ids,
            tijdstip=self.clock.now(),
        )
        return self._store(built.data, built.referentienummer, direction)

    def _store(self, envelope: bytes, referentienummer: str, direction: str) -> int:
        pk, message_id = store_di01_envelope(
            self.db, self.clock, envelope, direction, host="koppeltabel.test"
        )
        self.refs[pk] = referentienummer
        self.message_ids[pk] = message_id
        return pk
