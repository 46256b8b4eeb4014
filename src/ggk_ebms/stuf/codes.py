"""Foutcodes a StUF-GGk Fo01 carries, with their meaning, so logs show code *and* omschrijving.

StUF 03.01 codes come from stuf0301 table 4.1 (StUF 03.01 table 4.1); the GGk spec names only
StUF055 for gemeenten, the others need agreement with BIDN before we send them. GGk codes (IBxxx)
are what the Inlichtingenbureau raises (GGk Fo01 foutcodetabel, current generation); we only use them to
describe refusals in the same words the portal does. The number alone is not enough to branch on:
IB007 and IB009 changed meaning between generations (GGk Fo01 foutcodetabel).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class StufCode(StrEnum):
    """StUF 03.01 foutcodes (stuf0301 table 4.1)."""

    VERSION_UNSUPPORTED = "StUF001"
    SECTORMODEL_UNSUPPORTED = "StUF004"
    SECTORMODEL_VERSION_UNSUPPORTED = "StUF007"
    ONTVANGER_UNKNOWN = "StUF010"
    ZENDER_UNKNOWN = "StUF013"
    REFERENTIE_NOT_UNIQUE = "StUF016"
    BERICHTCODE_UNKNOWN = "StUF022"
    BERICHTCODE_UNSUPPORTED = "StUF025"
    FUNCTIE_UNKNOWN = "StUF034"
    FUNCTIE_UNSUPPORTED = "StUF037"
    COMBINATION_UNSUPPORTED = "StUF040"
    CROSSREF_UNKNOWN = "StUF043"
    CANNOT_STORE = "StUF046"
    NOT_AUTHORISED = "StUF052"
    NOT_SCHEMA_CONFORM = "StUF055"
    PROCESSING_ERROR = "StUF058"

    @property
    def omschrijving(self) -> str:
        return _STUF_OMSCHRIJVING[self]


_STUF_OMSCHRIJVING: Final[dict[StufCode, str]] = {
    StufCode.VERSION_UNSUPPORTED: "StUF-versie wordt niet ondersteund",
    StufCode.SECTORMODEL_UNSUPPORTED: "Sectormodel wordt niet ondersteund",
    StufCode.SECTORMODEL_VERSION_UNSUPPORTED: "Versie van het sectormodel wordt niet ondersteund",
    StufCode.ONTVANGER_UNKNOWN: "Ontvanger is onbekend",
    StufCode.ZENDER_UNKNOWN: "Zender is onbekend",
    StufCode.REFERENTIE_NOT_UNIQUE: "Combinatie van zender en referentienummer is niet uniek",
    StufCode.BERICHTCODE_UNKNOWN: "Berichtcode is onbekend",
    StufCode.BERICHTCODE_UNSUPPORTED: "Berichtcode wordt niet ondersteund",
    StufCode.FUNCTIE_UNKNOWN: "Functie is onbekend",
    StufCode.FUNCTIE_UNSUPPORTED: "Functie wordt niet ondersteund",
    StufCode.COMBINATION_UNSUPPORTED: "Combinatie van berichtcode en functie wordt niet ondersteund",
    StufCode.CROSSREF_UNKNOWN: "CrossRefnummer is onbekend",
    StufCode.CANNOT_STORE: "Bericht kan niet worden opgeslagen",
    StufCode.NOT_AUTHORISED: "Zender is niet geautoriseerd",
    StufCode.NOT_SCHEMA_CONFORM: "Berichtbody is niet conform schema",
    StufCode.PROCESSING_ERROR: "Fout bij verwerking van het bericht",
}


GGK_FOUTCODES: Final[dict[str, str]] = {
    # Current generation (GEMMA online Fo01 table; GGk Fo01 foutcodetabel). Meanings in our own words.
    "IB001": "bericht voldoet niet aan het XSD",
    "IB002": "verzendende organisatie is niet geautoriseerd voor het GGk",
    "IB003": "bericht is groter dan 25 MB",
    "IB004": "functie wordt niet ondersteund",
    "IB005": "gemeentecode is onbekend bij het GGk",
    "IB006": "zender is niet geautoriseerd voor deze berichtcode/functie",
    "IB007": "combinatie van functie en organisatie is niet toegestaan",
    "IB008": "indiener heeft geen rol of grondslag",
    "IB009": "geen toestemmingsverklaring",
    "IB010": "geadresseerde niet bekend bij VECOZO of AGB-code onjuist",
    "IB011": "geadresseerde heeft geen rol of grondslag",
    "IB012": "payload is groter dan 25 MB",
    "IB013": "payload bevat een virus",
    "IB014": "payload voldoet niet aan het XSD",
    "IB015": "persoonsgegevens niet toegestaan in deze omgeving",
    "IB016": "referentienummer is niet uniek",
    "IB023": "functie is niet actief",
    # 2017-2018 generation, where routing refusals were numbered differently.
    "IB101": "geen geldig CPA voor organisatie en berichttype",
    "IB102": "geen route voor organisatie en berichttype",
    "IB103": "berichttype is geblokkeerd",
}


# The GGk's code for an envelope over 25 MB (IB003, current generation). We answer an oversized
# envelope with it too, so the sender reads the refusal in the words the GGk itself uses.
GGK_TOO_LARGE: Final = "IB003"


def describe(code: str) -> str:
    """``code`` with its meaning when we know it, for logs (``StUF055 (Berichtbody is niet…)``)."""
    try:
        return f"{code} ({StufCode(code).omschrijving})"
    except ValueError:
        meaning = GGK_FOUTCODES.get(code)
        return f"{code} ({meaning})" if meaning else code
