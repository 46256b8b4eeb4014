"""The verwerkingsverslag's refusal texts, in the portal's Dutch (GGk
Aanleveren manual, IB handleidingen GGk and berichtuitwisseling).

A ``Fout`` is what one incorrect file gets in the verslag: the portal's *Foutomschrijving* and a
*Fout detail* that names the rule and the value that broke it, never personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

NIET_GEAUTORISEERD: Final = "Organisatie is niet geautoriseerd"
XSD: Final = "Bericht voldoet niet aan de XSD"
BERICHTTYPE: Final = "Berichttype wordt niet ondersteund"
TE_GROOT: Final = "Bericht is te groot"
GEEN_XML: Final = "Bestand is geen XML-bestand"
MAP: Final = "Mappen in een ZIP-bestand zijn niet toegestaan"
PAD: Final = "Bestandsnaam is niet toegestaan"
ZIPBOM: Final = "Bestand wordt niet uitgepakt (mogelijke zip-bom)"
BESCHADIGD: Final = "Bestand in de ZIP is beschadigd of versleuteld"
TE_VEEL: Final = "ZIP-bestand bevat te veel bestanden"
LEEG: Final = "ZIP-bestand bevat geen bestanden"
NIET_VERZONDEN: Final = "Bericht kan niet worden verzonden"
HEENBERICHT: Final = "Heenbericht is onbekend"
ONLEESBAAR: Final = "Bestand kan niet worden gelezen"


@dataclass(frozen=True)
class Fout:
    foutomschrijving: str
    fout_detail: str

    def __post_init__(self) -> None:
        # The verslag column holds at most 2000 characters (store/tables.py DETAIL_MAX).
        if len(self.fout_detail) > 2000:
            object.__setattr__(self, "fout_detail", self.fout_detail[:1997] + "...")
