"""The StUF-GGk envelope generations an exchange can be set to, and building in either of them.

The GGk portal fixes the envelope version per berichtuitwisseling ("StUF 2.1") and the GGk answers
IB798 when a message arrives in another one (StUF-GGk spec GGk0210/GGk0310; GGk Fo01 foutcodetabel 2017-2018
generation). Two generations are in use and both are built here:

- ``ggk0210``: spec 2.1.04 patch 4, the current one (namespace ``…/koppelvlak/ggk0210``); the payload
  sits base64 in ``bericht/xmlBestand`` or ``bericht/tekstBestand/@bestandsnaam``.
- ``ggk0310``: the Ggk0310_21_03 package, spec 2.1.02/2.1.03 (namespace ``…/sectormodel/ggk/0210``);
  ``bericht`` itself is the base64 with a required ``xmime:contentType`` and an optional
  ``StUF:bestandsnaam``, and ``parameters`` may start with ``referentienummerBericht``.

The 2.0-2.1.01 envelope (``http://www.egem.nl/StUF/sector/ggk/0310``) is still read by
``stuf.envelope.parse_envelope`` but is no setting: nobody may be configured to it any more.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from lxml import etree

from ggk_ebms import ns
from ggk_ebms.clock import IdGenerator
from ggk_ebms.errors import StufError
from ggk_ebms.stuf.codes import StufCode
from ggk_ebms.stuf.envelope import build_di01, build_du01, build_payload_envelope
from ggk_ebms.stuf.model import BuiltMessage, MessageKind, Systeem
from ggk_ebms.stuf.versions import EnvelopeVersion
from ggk_ebms.xml import qname


class Generation(StrEnum):
    """An envelope generation as an exchange names it (``exchanges set --stuf-version``)."""

    GGK0210 = "ggk0210"
    GGK0310 = "ggk0310"

    @property
    def version(self) -> EnvelopeVersion:
        return _VERSIONS[self]

    @property
    def label(self) -> str:
        """How the GGk portal and the spec name it."""
        return _LABELS[self]


_VERSIONS: Final = {
    Generation.GGK0210: EnvelopeVersion.GGK0210,
    Generation.GGK0310: EnvelopeVersion.GGK0210_SECTOR,
}
_LABELS: Final = {
    Generation.GGK0210: "StUF-GGk 2.1.04 patch 4",
    Generation.GGK0310: "StUF-GGk 2.1.03, Ggk0310_21_03",
}
# Spellings operators use for the same thing (the portal says "StUF 2.1" for the current one).
_ALIASES: Final = {
    "ggk0210": Generation.GGK0210,
    "2.1": Generation.GGK0210,
    "2.1.04": Generation.GGK0210,
    "ggk0310": Generation.GGK0310,
    "2.1.03": Generation.GGK0310,
    "2.1.02": Generation.GGK0310,
}


def parse_generation(text: str) -> Generation:
    """``ggk0210``/``2.1``/``2.1.04`` or ``ggk0310``/``2.1.03``/``2.1.02``; else ValueError."""
    found = _ALIASES.get(text.strip().lower())
    if found is None:
        raise ValueError(f"StUF envelope version {text!r} is not ggk0210 (2.1.04) or ggk0310 (2.1.03/2.1.02)")
    return found


def generation_of(version: EnvelopeVersion | None) -> Generation | None:
    """The generation a parsed envelope is in; None for the 2.0 envelope and for Fo01/Bv03."""
    for generation, known in _VERSIONS.items():
        if known is version:
            return generation
    return None


def build_envelope(
    generation: Generation,
    kind: MessageKind,
    *,
    zender: Systeem,
    ontvanger: Systeem,
    functie: str,
    payload: bytes,
    ids: IdGenerator,
    tijdstip: datetime,
    functie_versie: int | str,
    functie_subversie: int | str,
    cross_ref: str | None = None,
    applicatie_versie: int | str = 1,
    applicatie_subversie: int | str = 0,
    bestandsnaam: str | None = None,
) -> BuiltMessage:
    """A Di01 (``cross_ref`` None) or Du01 in ``generation``."""
    if generation is Generation.GGK0210:
        common = {
            "zender": zender,
            "ontvanger": ontvanger,
            "functie": functie,
            "payload": payload,
            "ids": ids,
            "tijdstip": tijdstip,
            "functie_versie": functie_versie,
            "functie_subversie": functie_subversie,
            "applicatie_versie": applicatie_versie,
            "applicatie_subversie": applicatie_subversie,
            "bestandsnaam": bestandsnaam,
        }
        if kind is MessageKind.DU01:
            if cross_ref is None:
                raise StufError(StufCode.NOT_SCHEMA_CONFORM, "a Du01 needs the crossRefnummer it answers")
            return build_du01(cross_ref=cross_ref, **common)  # type: ignore[arg-type]
        return build_di01(**common)  # type: ignore[arg-type]
    return _build_ggk0310(
        kind,
        zender=zender,
        ontvanger=ontvanger,
        functie=functie,
        payload=payload,
        ids=ids,
        tijdstip=tijdstip,
        versions=(applicatie_versie, applicatie_subversie, functie_versie, functie_subversie),
        cross_ref=cross_ref,
        bestandsnaam=bestandsnaam,
    )


def _build_ggk0310(
    kind: MessageKind,
    *,
    zender: Systeem,
    ontvanger: Systeem,
    functie: str,
    payload: bytes,
    ids: IdGenerator,
    tijdstip: datetime,
    versions: tuple[int | str, int | str, int | str, int | str],
    cross_ref: str | None,
    bestandsnaam: str | None,
) -> BuiltMessage:
    """The 2.1.02/2.1.03 form (ggk0310_msg.xsd): ``bericht`` is base64 text with xmime:contentType.

    We still give it a lowercase UUID v4 referentienummer (allowed, not required by that XSD) so
    the same correlation works whichever generation an exchange uses.
    """
    if kind not in (MessageKind.DI01, MessageKind.DU01):
        raise StufError(StufCode.BERICHTCODE_UNSUPPORTED, f"a {kind.value} is no Di01/Du01 envelope")
    if kind is MessageKind.DU01 and not cross_ref:
        raise StufError(StufCode.NOT_SCHEMA_CONFORM, "a Du01 needs the crossRefnummer it answers")
    return build_payload_envelope(
        kind,
        namespace=ns.GGK_0210_SECTOR,
        extra_namespaces={"xmime": ns.XMIME},
        zender=zender,
        ontvanger=ontvanger,
        functie=functie,
        payload=payload,
        ids=ids,
        tijdstip=tijdstip,
        versions=versions,
        # A Di01 answers nothing: a cross_ref given with one is not written.
        cross_ref=cross_ref if kind is MessageKind.DU01 else None,
        bestandsnaam=bestandsnaam,
        fill_bericht=_fill_bericht,
    )


def _fill_bericht(bericht: etree._Element, encoded: str, bestandsnaam: str | None) -> None:
    # 2.1.03: text/plain for a CSV (tekstBestand's successor), else application/xml (StUF-GGk spec
    # GGk0210/GGk0310).
    bericht.set(qname(ns.XMIME, "contentType"), "text/plain" if bestandsnaam else "application/xml")
    if bestandsnaam:
        bericht.set(qname(ns.STUF, "bestandsnaam"), bestandsnaam)
    bericht.text = encoded


__all__ = ["Generation", "build_envelope", "generation_of", "parse_generation"]
