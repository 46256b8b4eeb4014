"""The StUF-GGk envelope layout for CBS Monitor Sociaal Domein files (docs/cbs.md "Envelope").

ggk0210 (stuf-ggk 2.1.04) carries a file as ``parameters/bericht/tekstBestand`` (base64) with a
required ``bestandsnaam``. Its ``referentienummer`` must be a UUID v4 (XSD pattern), so the CBS
referentienummer ``yyyymmdd-hhmmss`` cannot stand there; it leads the bestandsnaam instead:

- delivery (gemeente -> CBS): Di01, zender = gemeentecode, ontvanger = ``CBS``,
  functie = setting ``cbs_functie``, bestandsnaam = ``<yyyymmdd-hhmmss>_<file name>``, the CSV
  bytes unchanged;
- opt-in (gemeente -> CBS): the same, functie = setting ``cbs_toestemming_functie``;
- report (CBS -> gemeente): Du01 with crossRefnummer = the delivery's StUF referentienummer (or
  a Di01 without it), functie = setting ``cbs_rapport_functie``, bestandsnaam =
  ``<yyyymmdd-hhmmss>_<report name>.pdf``: either key links it to the delivery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from ggk_ebms.cbs.referentie import PATTERN
from ggk_ebms.clock import IdGenerator
from ggk_ebms.stuf.envelope import build_di01, build_du01
from ggk_ebms.stuf.model import BuiltMessage, MessageKind, PayloadKind, StufMessage, Systeem

CBS_ORGANISATIE: Final = "CBS"
CBS_APPLICATIE: Final = "GGk"
_REF_NAME: Final = re.compile(rf"({PATTERN.pattern})_(.+)")
# The ggk0210 functie versions for a file that is no iStandaarden message: 1.0.
FUNCTIE_VERSIE: Final = 1
FUNCTIE_SUBVERSIE: Final = 0


def bestandsnaam(referentienummer: str, filename: str) -> str:
    return f"{referentienummer}_{filename}"


def split_bestandsnaam(name: str) -> tuple[str | None, str]:
    """(CBS referentienummer, file name) of a bestandsnaam; (None, name) without the prefix."""
    match = _REF_NAME.fullmatch(name)
    return (match.group(1), match.group(2)) if match else (None, name)


def build_delivery(
    *,
    gemeentecode: str,
    applicatie: str,
    functie: str,
    referentienummer: str,
    filename: str,
    data: bytes,
    ids: IdGenerator,
    moment: datetime,
) -> BuiltMessage:
    """A Di01 to CBS carrying ``data`` unchanged (CSV delivery or opt-in CSV)."""
    return build_di01(
        zender=Systeem(gemeentecode, applicatie),
        ontvanger=Systeem(CBS_ORGANISATIE, CBS_APPLICATIE),
        functie=functie,
        payload=data,
        ids=ids,
        tijdstip=moment,
        functie_versie=FUNCTIE_VERSIE,
        functie_subversie=FUNCTIE_SUBVERSIE,
        bestandsnaam=bestandsnaam(referentienummer, filename),
    )


def build_report(
    *,
    gemeentecode: str,
    functie: str,
    cross_ref: str,
    referentienummer: str,
    filename: str,
    pdf: bytes,
    ids: IdGenerator,
    moment: datetime,
) -> BuiltMessage:
    """A Du01 from CBS with a PDF report (what RINIS relays; used by tests and the demo peer)."""
    return build_du01(
        zender=Systeem(CBS_ORGANISATIE, CBS_APPLICATIE),
        ontvanger=Systeem(gemeentecode, "GGk"),
        functie=functie,
        payload=pdf,
        cross_ref=cross_ref,
        ids=ids,
        tijdstip=moment,
        functie_versie=FUNCTIE_VERSIE,
        functie_subversie=FUNCTIE_SUBVERSIE,
        bestandsnaam=bestandsnaam(referentienummer, filename),
    )


@dataclass(frozen=True)
class CbsReport:
    """A report from CBS as read from its envelope. ``pdf`` may hold personal data: never logged."""

    gemeentecode: str
    filename: str
    cbs_referentienummer: str | None
    cross_ref: str | None
    stuf_referentienummer: str
    pdf: bytes = field(repr=False)


def is_cbs_report(stuf: StufMessage, functie: str) -> bool:
    sg = stuf.stuurgegevens
    return (
        stuf.kind in (MessageKind.DI01, MessageKind.DU01)
        and sg.zender.organisatie == CBS_ORGANISATIE
        and stuf.functie == functie
        and stuf.payload is not None
        and stuf.payload.kind is PayloadKind.TEXT
    )


def read_report(stuf: StufMessage) -> CbsReport:
    assert stuf.payload is not None  # is_cbs_report checked it
    ref, name = split_bestandsnaam(stuf.payload.bestandsnaam or "rapport.pdf")
    sg = stuf.stuurgegevens
    return CbsReport(
        gemeentecode=sg.ontvanger.organisatie,
        filename=name,
        cbs_referentienummer=ref,
        cross_ref=sg.cross_refnummer,
        stuf_referentienummer=sg.referentienummer,
        pdf=stuf.payload.data,
    )
