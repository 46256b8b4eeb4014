"""The koppeltabel: which messages belong together, by the iStandaarden rules. Pure, no I/O.

Each StUF-GGk message is reduced to its ``Keys``: the stuurgegevens that pair messages
(referentienummer, crossRefnummer; StUF 03.01 / StUF-GGk) and the payload identifiers that tie a
toewijzing to what follows it (ToewijzingNummer, BeschikkingNummer, ReferentieAanbieder,
BerichtIdentificatie, DeclaratieIdentificatie; iWmo/iJw 3.2 berichtspecificaties). ``relate``
decides, for two messages, every relation between them with the way it was established:

- a heenbericht and its retour (301/302, 305/306, 307/308, 315/316, 317/318, 319/320; iEb
  401/402, 403/404): the Du01 crossRefnummer is the Di01 referentienummer, or the retour header
  repeats the heen's Afzender and BerichtIdentificatie;
- a 323 and its 325: crossRefnummer, or the 325's DeclaratieIdentificatie;
- a 301 and the 305/307/323 about its toewijzing: the same ToewijzingNummer (and, for a 323,
  also the same aanbieder and gemeente);
- a 315 and the 301 that answers it: ReferentieAanbieder or BeschikkingNummer;
- any message and the Fo01 about it: the Fo01 crossRefnummer is its referentienummer.

docs/koppeltabel.md describes the table for readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from lxml import etree

from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Catalogue
from ggk_ebms.payloads.detect import PayloadInfo
from ggk_ebms.stuf.model import MessageKind, StufMessage
from ggk_ebms.xml import local_name

MAX_VALUES: Final = 200  # identifiers kept per message: a 323 lists at most a few hundred prestaties
MAX_VALUE_LEN: Final = 64


class Relation(StrEnum):
    """What the later message is to the earlier one."""

    RETOUR = "retour"  # the retour of a heenbericht (3xx -> 3xx+1)
    ANTWOORD = "antwoord"  # the 325 declaratie-antwoord of a 323
    START = "start"  # a 305 start zorg on a 301 toewijzing
    STOP = "stop"  # a 307 stop zorg on a 301 toewijzing
    DECLARATIE = "declaratie"  # a 323 declaring on a 301 toewijzing
    TOEWIJZING = "toewijzing"  # the 301 that answers a 315 aanvraag
    FOUT = "fout"  # the Fo01 about a message


class Via(StrEnum):
    """How a relation was established: the element both messages share."""

    CROSS_REFNUMMER = "crossRefnummer"
    BERICHT_IDENTIFICATIE = "BerichtIdentificatie"
    DECLARATIE_IDENTIFICATIE = "DeclaratieIdentificatie"
    TOEWIJZING_NUMMER = "ToewijzingNummer"
    BESCHIKKING_NUMMER = "BeschikkingNummer"
    REFERENTIE_AANBIEDER = "ReferentieAanbieder"


# Payload identifiers read anywhere in the body (element local names).
BODY_IDENTIFIERS: Final = (
    "ToewijzingNummer",
    "BeschikkingNummer",
    "ReferentieAanbieder",
    "DeclaratieIdentificatie",
)


@dataclass(frozen=True)
class Keys:
    """What of one message can tie it to another. Values are identifiers: never log them."""

    berichtcode: str  # Di01, Du01, Fo01, ...
    referentienummer: str
    cross_refnummer: str | None
    zender: str
    ontvanger: str
    berichttype: str | None = None  # "JW301"; None for a Fo01 or a payload that is no iStandaard
    gemeentecode: str | None = None
    aanbieder: str | None = None
    afzender: str | None = None  # payload Header/Afzender
    identificatie: str | None = None  # payload Header/BerichtIdentificatie/Identificatie
    values: frozenset[tuple[str, str]] = frozenset()  # (element name, value) from the body

    def __repr__(self) -> str:  # identifiers stay out of reprs and so out of logs
        return f"Keys({self.berichtcode}, {self.berichttype}, ref={self.referentienummer!r})"

    def of(self, name: str) -> frozenset[str]:
        return frozenset(v for n, v in self.values if n == name)

    def probes(self) -> frozenset[tuple[str, str]]:
        """The (name, value) pairs under which this message is found and finds others."""
        found: set[tuple[str, str]] = {("stuf-ref", self.referentienummer)}
        if self.cross_refnummer:
            found.add(("stuf-ref", self.cross_refnummer))
        if self.identificatie and self.afzender:
            found.add(("identificatie", f"{self.afzender}/{self.identificatie}"))
        for value in self.of("DeclaratieIdentificatie"):
            # The 325's DeclaratieIdentificatie is the 323's BerichtIdentificatie; the 323's
            # Afzender is the 325's Ontvanger.
            if self.aanbieder:
                found.add(("identificatie", f"{self.aanbieder}/{value}"))
        for name in ("ToewijzingNummer", "BeschikkingNummer", "ReferentieAanbieder"):
            found.update((name, value) for value in self.of(name))
        return frozenset(found)


@dataclass(frozen=True)
class Link:
    """``later`` is ``relation`` of ``earlier``, established ``via`` the shared ``value``."""

    earlier: int
    later: int
    relation: Relation
    via: Via
    value: str  # the shared identifier: hashed in Ketendata, never logged


def keys_of(
    envelope: StufMessage,
    info: PayloadInfo | None,
    root: etree._Element | None,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
) -> Keys:
    """The keys of a parsed StUF message and (when it is an iStandaarden message) its payload."""
    sg = envelope.stuurgegevens
    values: set[tuple[str, str]] = set()
    if root is not None:
        for el in root.iter():
            if not isinstance(el.tag, str) or local_name(el) not in BODY_IDENTIFIERS:
                continue
            text = (el.text or "").strip()
            if text and len(text) <= MAX_VALUE_LEN and len(values) < MAX_VALUES:
                values.add((local_name(el), text))
    gemeente = aanbieder = None
    berichttype = None
    if info is not None:
        berichttype = info.berichttype
        entry = catalogue.get(info.berichttype)
        if entry is not None:
            gemeente = info.header_value(entry.gemeente_field.value)
            if entry.other_field is not None:
                aanbieder = info.header_value(entry.other_field)
    return Keys(
        berichtcode=sg.berichtcode.value,
        referentienummer=sg.referentienummer,
        cross_refnummer=sg.cross_refnummer,
        zender=sg.zender.organisatie,
        ontvanger=sg.ontvanger.organisatie,
        berichttype=berichttype,
        gemeentecode=gemeente,
        aanbieder=aanbieder,
        afzender=info.header_value("Afzender") if info is not None else None,
        identificatie=info.identificatie if info is not None else None,
        values=frozenset(values),
    )


def _number(berichttype: str | None) -> str | None:
    """ "301" of "JW301"/"WMO301"."""
    return berichttype[-3:] if berichttype and berichttype[-3:].isdigit() else None


def _same_standaard(a: str, b: str) -> bool:
    return a[:-3] == b[:-3]


def _answers(heen: Keys, answer: Keys) -> bool:
    """The StUF pairing: the answer's crossRefnummer is the heen's referentienummer and the two
    travel in opposite directions (referentienummers are unique per zender only)."""
    return (
        answer.cross_refnummer is not None
        and answer.cross_refnummer == heen.referentienummer
        and answer.zender == heen.ontvanger
        and answer.ontvanger == heen.zender
    )


def _same_parties(a: Keys, b: Keys) -> bool:
    return (
        a.gemeentecode is not None
        and a.gemeentecode == b.gemeentecode
        and a.aanbieder is not None
        and a.aanbieder == b.aanbieder
    )


_BY_TOEWIJZING: Final = {"305": Relation.START, "307": Relation.STOP, "323": Relation.DECLARATIE}


def relate(
    earlier: tuple[int, Keys], later: tuple[int, Keys], catalogue: Catalogue = DEFAULT_CATALOGUE
) -> list[Link]:
    """Every relation in which ``later`` follows ``earlier`` (call both ways for an unknown order)."""
    e_pk, e = earlier
    l_pk, lat = later
    links: list[Link] = []

    def add(relation: Relation, via: Via, value: str) -> None:
        links.append(Link(e_pk, l_pk, relation, via, value))

    if e_pk == l_pk:
        return links
    if lat.berichtcode == MessageKind.FO01.value:
        if e.berichtcode != MessageKind.FO01.value and _answers(e, lat):
            add(Relation.FOUT, Via.CROSS_REFNUMMER, e.referentienummer)
        return links
    if e.berichttype is None or lat.berichttype is None:
        return links
    if not _same_standaard(e.berichttype, lat.berichttype):
        return links
    entry = catalogue.get(e.berichttype)
    e_num, l_num = _number(e.berichttype), _number(lat.berichttype)
    # Heen and retour (or 323 and 325): the catalogue's pair names the answer's berichttype.
    if entry is not None and entry.pair == lat.berichttype and lat.berichtcode == MessageKind.DU01.value:
        relation = Relation.ANTWOORD if e_num == "323" else Relation.RETOUR
        if _answers(e, lat):
            add(relation, Via.CROSS_REFNUMMER, e.referentienummer)
        elif e_num == "323":
            declared = lat.of("DeclaratieIdentificatie")
            if e.identificatie and e.identificatie in declared and e.afzender == lat.aanbieder:
                add(relation, Via.DECLARATIE_IDENTIFICATIE, e.identificatie)
        elif e.identificatie and e.identificatie == lat.identificatie and e.afzender == lat.afzender:
            add(relation, Via.BERICHT_IDENTIFICATIE, e.identificatie)
        return links
    if e_num == "301" and l_num in _BY_TOEWIJZING and _same_parties(e, lat):
        shared = sorted(e.of("ToewijzingNummer") & lat.of("ToewijzingNummer"))
        if shared:
            add(_BY_TOEWIJZING[l_num], Via.TOEWIJZING_NUMMER, shared[0])
    elif e_num == "315" and l_num == "301" and _same_parties(e, lat):
        for name, via in (
            ("ReferentieAanbieder", Via.REFERENTIE_AANBIEDER),
            ("BeschikkingNummer", Via.BESCHIKKING_NUMMER),
        ):
            shared = sorted(e.of(name) & lat.of(name))
            if shared:
                add(Relation.TOEWIJZING, via, shared[0])
                break
    return links


def relate_either(
    a: tuple[int, Keys], b: tuple[int, Keys], catalogue: Catalogue = DEFAULT_CATALOGUE
) -> list[Link]:
    """``relate`` in both orders: traffic can arrive out of order (a 305 before its 301 is stored)."""
    return relate(a, b, catalogue) + relate(b, a, catalogue)
