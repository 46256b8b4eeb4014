"""A StUF-GGk message as values: stuurgegevens, parameters, payload, or the body of a Fo01/Fo03.

Everything here is safe to log except ``Payload.data``, which is
personal data (iStandaarden privacy elements, docs/rules.md): its
``repr`` shows only the size and a hash prefix, never bytes or base64. Stuurgegevens, functie and
referentienummers are routing data and named as safe in docs/rules.md (Personal data).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from ggk_ebms.stuf.versions import EnvelopeVersion


class MessageKind(StrEnum):
    """The StUF berichtcode of the message (StUF-GGk spec: Di01/Du01/Fo01; StUF 03.01: Fo01/Fo03/Bv03)."""

    DI01 = "Di01"  # heenbericht: every initiating iWmo/iJw/iEb message
    DU01 = "Du01"  # retourbericht: every answer
    FO01 = "Fo01"  # asynchronous functional error, what a gemeente receives and sends
    FO03 = "Fo03"  # synchronous error between RINIS, IB/BIDN and VECOZO only
    BV03 = "Bv03"  # synchronous ack between RINIS, IB/BIDN and VECOZO only

    @property
    def is_envelope(self) -> bool:
        """Di01 and Du01 carry a payload; the others only stuurgegevens (and a fout)."""
        return self in (MessageKind.DI01, MessageKind.DU01)


class PayloadKind(StrEnum):
    XML = "xml"  # GGK:xmlBestand, or contentType text/xml|application/xml before 2.1.04
    TEXT = "tekst"  # GGK:tekstBestand (CSV for the CBS monitor), or contentType text/plain


@dataclass(frozen=True)
class Systeem:
    """zender or ontvanger (StUF:Systeem): organisatie is a gemeentecode, AGB or party code."""

    organisatie: str
    applicatie: str
    administratie: str | None = None
    gebruiker: str | None = None


@dataclass(frozen=True)
class Stuurgegevens:
    berichtcode: MessageKind
    zender: Systeem
    ontvanger: Systeem
    referentienummer: str
    tijdstip_bericht: str
    cross_refnummer: str | None = None
    functie: str | None = None  # berichttype, without the 2.0 "-0204" suffix
    functie_suffix: str | None = None  # the "0204" of a 2.0 functie "WMO301-0204"


@dataclass(frozen=True)
class Parameters:
    applicatie_versie: str
    applicatie_subversie: str
    functie_versie: str
    functie_subversie: str
    referentienummer_bericht: str | None = None  # 2.1.02/03 only
    cross_refnummer_bericht: str | None = None  # 2.1.02/03 Du01 only


@dataclass(frozen=True)
class Payload:
    """The decoded payload. ``data`` is personal data: never
    log it (iStandaarden privacy elements, docs/rules.md)."""

    kind: PayloadKind
    data: bytes = field(repr=False)
    bestandsnaam: str | None = None
    content_type: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def __repr__(self) -> str:
        return (
            f"Payload(kind={self.kind.value!r}, bytes={len(self.data)}, sha256={self.sha256[:16]}…, "
            f"bestandsnaam={self.bestandsnaam!r}, content_type={self.content_type!r})"
        )


@dataclass(frozen=True)
class Fout:
    """The body of a Fo01/Fo03. ``detailsXML`` holds the whole original message (personal data),
    so only its presence is kept (StUF 03.01: Fo01/Fo03/Bv03)."""

    code: str
    plek: str
    omschrijving: str
    details: str | None = None
    has_details_xml: bool = False


@dataclass(frozen=True)
class StufMessage:
    """One parsed StUF-GGk message. ``version`` is None for Fo01/Fo03/Bv03 (plain StUF 03.01)."""

    kind: MessageKind
    version: EnvelopeVersion | None
    stuurgegevens: Stuurgegevens
    parameters: Parameters | None = None
    payload: Payload | None = None
    fout: Fout | None = None
    warnings: tuple[str, ...] = ()

    @property
    def functie(self) -> str | None:
        return self.stuurgegevens.functie

    @property
    def referentienummer(self) -> str:
        return self.stuurgegevens.referentienummer


@dataclass(frozen=True)
class BuiltMessage:
    """What a builder returns: the XML to send and the values to store for correlation."""

    data: bytes = field(repr=False)
    referentienummer: str
    tijdstip_bericht: str

    def __repr__(self) -> str:
        return (
            f"BuiltMessage(bytes={len(self.data)}, referentienummer={self.referentienummer!r}, "
            f"tijdstip_bericht={self.tijdstip_bericht!r})"
        )
