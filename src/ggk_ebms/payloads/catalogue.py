"""The iWmo/iJw/iEb message catalogue as data (iWmo/iJw 3.2 message catalogue).

One entry per berichttype (the StUF ``functie``): its Vektis BerichtCode(s) (COD002), heen, retour
or answer, which message it pairs with, who sends it to whom, which envelope carries it, and which
payload header element holds the gemeentecode (the other one holds the AGB). The tests check the
BerichtCodes against the ``pattern`` each official XSD fixes. Later codes (iEb ≥ 2, PGB) are not
verified, so the catalogue can be extended with ``Catalogue.with_entries`` from configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ggk_ebms.stuf.model import MessageKind


class Standaard(StrEnum):
    IWMO = "iwmo"
    IJW = "ijw"
    IEB = "ieb"
    # PGB 1.0 (G <-> SVB, iWmo/iJw 3.2 message catalogue): no namespace or BerichtCode is known here, so these
    # payloads are carried and routed on the envelope alone, never detected from their content.
    PGB_WMO = "pgb-wmo"
    PGB_JW = "pgb-jw"

    @property
    def detectable(self) -> bool:
        """Whether the payload is an iStandaarden ``Bericht`` we can read (iStandaarden namespaces)."""
        return self in (Standaard.IWMO, Standaard.IJW, Standaard.IEB)


class Soort(StrEnum):
    HEEN = "heen"
    RETOUR = "retour"
    ANTWOORD = "antwoord"  # 325: the content answer to a declaratie, no retour of its own


class Party(StrEnum):
    """Who sends or receives: decides what ``zender/organisatie`` must look like (docs/stuf-routing.md inbound
    check 7)."""

    GEMEENTE = "gemeente"  # 4-digit CBS gemeentecode
    AANBIEDER = "aanbieder"  # 8-digit AGB code, via VECOZO
    CAK = "CAK"  # party code CAK (iEb)
    SVB = "SVB"  # party code SVB (PGB, iWmo/iJw 3.2 message catalogue)


class HeaderField(StrEnum):
    """Payload header element that holds the gemeentecode (iWmo/iJw 3.2 message catalogue, last column)."""

    AFZENDER = "Afzender"
    ONTVANGER = "Ontvanger"
    GEMEENTE = "Gemeente"  # legacy 303/304 headers use Gemeente/Aanbieder


@dataclass(frozen=True)
class CatalogueEntry:
    berichttype: str  # WMO301, JW315, WMO401: the StUF functie
    standaard: Standaard
    omschrijving: str
    berichtcodes: tuple[str, ...]  # COD002; legacy 303/304 have two; empty: not known, not checked
    soort: Soort
    sender: Party
    receiver: Party
    envelope: MessageKind  # Di01 for heen, Du01 for retour and answer
    pair: str | None  # the berichttype this one answers or is answered by
    gemeente_field: HeaderField
    releases: tuple[str, ...]  # releases whose XSDs we know to contain it
    legacy: bool = False  # only for periods before 01-01-2021 (IB handleiding berichtuitwisseling)
    envelope_inferred: bool = False  # 325 in Du01 is inferred, not stated (iWmo/iJw 3.2 message catalogue)

    @property
    def other_field(self) -> str | None:
        """The header element with the other party's code (AGB); iEb headers have none."""
        if self.standaard is Standaard.IEB or not self.standaard.detectable:
            return None
        return {
            HeaderField.AFZENDER: "Ontvanger",
            HeaderField.ONTVANGER: "Afzender",
            HeaderField.GEMEENTE: "Aanbieder",
        }[self.gemeente_field]


class Catalogue:
    """Lookup by berichttype (case-sensitive, as the GGk routes on it)."""

    def __init__(self, entries: Iterable[CatalogueEntry]) -> None:
        self._entries: dict[str, CatalogueEntry] = {}
        for entry in entries:
            if entry.berichttype in self._entries:
                raise ValueError(f"berichttype {entry.berichttype} is in the catalogue twice")
            self._entries[entry.berichttype] = entry

    def get(self, berichttype: str) -> CatalogueEntry | None:
        return self._entries.get(berichttype)

    def __contains__(self, berichttype: object) -> bool:
        return berichttype in self._entries

    def __iter__(self) -> Iterator[CatalogueEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def berichttypes(self) -> frozenset[str]:
        return frozenset(self._entries)

    def with_entries(self, extra: Iterable[CatalogueEntry]) -> Catalogue:
        """A catalogue with ``extra`` added, e.g. iEb 3.0 WMO405-408 once their codes are confirmed."""
        return Catalogue([*self._entries.values(), *extra])


G, A, CAK, SVB = Party.GEMEENTE, Party.AANBIEDER, Party.CAK, Party.SVB
AFZ, ONTV, GEM = HeaderField.AFZENDER, HeaderField.ONTVANGER, HeaderField.GEMEENTE
DI, DU = MessageKind.DI01, MessageKind.DU01
HEEN, RETOUR = Soort.HEEN, Soort.RETOUR
BOTH, R32, R23 = ("2.3", "3.2"), ("3.2",), ("2.3",)

# (nummer, omschrijving, soort, sender, receiver, envelope, pair, gemeente field, WMO codes, JW codes,
#  releases): iWmo/iJw 3.2 message catalogue, iWmo/iJw 3.2 with the 2.3 messages that share a number.
_IWMO_IJW: Final = (
    ("301", "Toewijzing", HEEN, G, A, DI, "302", AFZ, ("414",), ("436",), BOTH),
    ("302", "Retour toewijzing", RETOUR, A, G, DU, "301", AFZ, ("415",), ("437",), BOTH),
    ("305", "Start ondersteuning", HEEN, A, G, DI, "306", ONTV, ("418",), ("438",), BOTH),
    ("306", "Retour start ondersteuning", RETOUR, G, A, DU, "305", ONTV, ("419",), ("439",), BOTH),
    ("307", "Stop ondersteuning", HEEN, A, G, DI, "308", ONTV, ("420",), ("440",), BOTH),
    ("308", "Retour stop ondersteuning", RETOUR, G, A, DU, "307", ONTV, ("421",), ("441",), BOTH),
    ("315", "Verzoek om toewijzing", HEEN, A, G, DI, "316", ONTV, ("444",), ("446",), BOTH),
    (
        "316",
        "Retour verzoek om toewijzing",
        RETOUR,
        G,
        A,
        DU,
        "315",
        ONTV,
        ("445",),
        ("447",),
        ("2.3", "3.2"),
    ),
    ("317", "Verzoek om wijziging", HEEN, A, G, DI, "318", ONTV, ("480",), ("486",), R32),
    ("318", "Retour verzoek om wijziging", RETOUR, G, A, DU, "317", ONTV, ("481",), ("487",), R32),
    ("319", "Antwoordbericht", HEEN, G, A, DI, "320", AFZ, ("482",), ("488",), R32),
    ("320", "Retour antwoordbericht", RETOUR, A, G, DU, "319", AFZ, ("483",), ("489",), R32),
    ("323", "Declaratie", HEEN, A, G, DI, "325", ONTV, ("484",), ("490",), R32),
    ("325", "Declaratie-antwoord", Soort.ANTWOORD, G, A, DU, "323", AFZ, ("485",), ("491",), R32),
)
# Legacy declaratie/factuur, before 01-01-2021 (iWmo/iJw 3.2 message catalogue): Gemeente/Aanbieder header.
_LEGACY: Final = (
    ("303", "Declaratie/factuur", HEEN, A, G, DI, "304", GEM, ("416", "448"), ("432", "450"), R23),
    (
        "304",
        "Retour declaratie/factuur",
        RETOUR,
        G,
        A,
        DU,
        "303",
        GEM,
        ("417", "449"),
        ("433", "451"),
        ("2.3",),
    ),
)
# Declaratie Jeugd met DBC/Basis-GGZ and its retour: listed by the Inlichtingenbureau GGk
# manual but with no known BerichtCode or XSD here, so
# BerichtCode is not checked (iWmo/iJw 3.2 message catalogue).
_JW_DBC: Final = (
    ("JW321", "Declaratie Jeugd DBC/Basis-GGZ", HEEN, A, G, DI, "JW322", ONTV),
    ("JW322", "Retour declaratie Jeugd DBC/Basis-GGZ", RETOUR, G, A, DU, "JW321", ONTV),
)
# PGB-Wmo / PGB-Jw 1.0 (G ↔ SVB): TKB Toekenningsbeschikking G->SVB, BAB Budget Afsluitingsbericht
# SVB->G; soort "n.v.t.", no pair (iWmo/iJw 3.2 message catalogue). The functie names are ours (*inferred*:
# the shared sources give none); each is carried in a Di01.
PGB_FUNCTIES: Final = {
    Standaard.PGB_WMO: ("PGBWMO-TKB", "PGBWMO-BAB"),
    Standaard.PGB_JW: ("PGBJW-TKB", "PGBJW-BAB"),
}
# iEb 1.0 (G ↔ CAK): header has Afzender = gemeente and no Ontvanger.
_IEB: Final = (
    ("401", "Start eigen bijdrage", HEEN, G, CAK, DI, "402", ("470",)),
    ("402", "Retour start eigen bijdrage", RETOUR, CAK, G, DU, "401", ("471",)),
    ("403", "Stop eigen bijdrage", HEEN, G, CAK, DI, "404", ("472",)),
    ("404", "Retour stop eigen bijdrage", RETOUR, CAK, G, DU, "403", ("473",)),
)


def _default_entries() -> Iterator[CatalogueEntry]:
    for rows, legacy in ((_IWMO_IJW, False), (_LEGACY, True)):
        for nummer, omschrijving, soort, sender, receiver, envelope, pair, field, wmo, jw, releases in rows:
            for prefix, standaard, codes in (("WMO", Standaard.IWMO, wmo), ("JW", Standaard.IJW, jw)):
                yield CatalogueEntry(
                    berichttype=f"{prefix}{nummer}",
                    standaard=standaard,
                    omschrijving=omschrijving,
                    berichtcodes=codes,
                    soort=soort,
                    sender=sender,
                    receiver=receiver,
                    envelope=envelope,
                    pair=f"{prefix}{pair}",
                    gemeente_field=field,
                    releases=releases,
                    legacy=legacy,
                    envelope_inferred=nummer == "325",
                )
    for nummer, omschrijving, soort, sender, receiver, envelope, pair, codes in _IEB:
        yield CatalogueEntry(
            berichttype=f"WMO{nummer}",
            standaard=Standaard.IEB,
            omschrijving=omschrijving,
            berichtcodes=codes,
            soort=soort,
            sender=sender,
            receiver=receiver,
            envelope=envelope,
            pair=f"WMO{pair}",
            gemeente_field=AFZ,
            releases=("1.0",),
        )
    for berichttype, omschrijving, soort, sender, receiver, envelope, pair, field in _JW_DBC:
        yield CatalogueEntry(
            berichttype=berichttype,
            standaard=Standaard.IJW,
            omschrijving=omschrijving,
            berichtcodes=(),
            soort=soort,
            sender=sender,
            receiver=receiver,
            envelope=envelope,
            pair=pair,
            gemeente_field=field,
            releases=(),
            legacy=True,
        )
    for standaard, (tkb, bab) in PGB_FUNCTIES.items():
        for berichttype, omschrijving, sender, receiver, field in (
            (tkb, "Toekenningsbeschikking", G, SVB, AFZ),
            (bab, "Budget Afsluitingsbericht", SVB, G, ONTV),
        ):
            yield CatalogueEntry(
                berichttype=berichttype,
                standaard=standaard,
                omschrijving=omschrijving,
                berichtcodes=(),
                soort=HEEN,
                sender=sender,
                receiver=receiver,
                envelope=DI,
                pair=None,
                gemeente_field=field,
                releases=("1.0",),
            )


DEFAULT_CATALOGUE: Final = Catalogue(_default_entries())
