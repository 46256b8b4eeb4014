"""Which iStandaarden elements become what in the Ketendata files (docs/ketendata.md).

Columns are named after the iStandaarden element names, so a reader who knows the message
specifications knows the columns. Three lists decide what happens to personal data:

- ``HASHED``: identifiers that link messages about one client or one toewijzing. They are kept
  as a keyed hash so files and weeks still join on them, but the value cannot be read back
  (the Inlichtingenbureau's Ketendata hashes Client_Bsn, ToewijzingNummer, ReferentieAanbieder
  and BeschikkingNummer; we add the declaratie's prestatie references, which an aanbieder may
  fill with its own client numbers).
- ``DROPPED``: names, addresses, telephone numbers, e-mail addresses and free text. Management
  information does not need them and they would identify the client.
- a value anywhere holding 9 digits that pass the elfproef is hashed as well: it may be a BSN;
- birth dates keep the year only (``*_Geboortedatum_Jaar``): enough for age groups.

``REPEATED`` lists the elements with ``maxOccurs="unbounded"`` in the iWmo/iJw 3.2, 2.3 and iEb
1.0 message schemas: each occurrence becomes one row in its own file.
"""

from __future__ import annotations

from typing import Final

# Hashed identifiers, by element name, with the hash domain: values of one domain hash alike in
# every message and file (a ToewijzingNummer in a 301 equals the one in the 305 that starts it).
HASHED: Final[dict[str, str]] = {
    "Bsn": "bsn",
    "ToewijzingNummer": "toewijzing",
    "ReferentieAanbieder": "referentie-aanbieder",
    "BeschikkingNummer": "beschikking",
    "ReferentieNummer": "prestatie-referentie",
    "VorigReferentieNummer": "prestatie-referentie",
    "GemeenteReferentieNummer": "gemeente-referentie",
    # BerichtIdentificatie is free text of up to 12 characters; senders fill it with numbers that
    # may look like (or be) a BSN. A retour's IdentificatieRetour hashes alike, so they still join.
    "Identificatie": "bericht-identificatie",
    "IdentificatieRetour": "bericht-identificatie",
}

# Safety net for free elements: a value holding a 9-digit number passing the BSN elfproef is
# hashed (domain below) wherever it stands, since it may be a BSN in the wrong field.
NINE_DIGIT_DOMAIN: Final = "negen-cijfers"

# Subtrees left out entirely: personal data and free text (iStandaarden basisschema types
# LDT_Naam, CDT_Adres, CDT_Telefoon, LDT_Emailadres, LDT_Commentaar and the like).
DROPPED: Final = frozenset(
    {
        "Naam",
        "Adres",
        "Telefoon",
        "Emailadres",
        "Commentaar",
        "Communicatie",
        "Organisatie",
        "Toelichting",
    }
)

BIRTH_DATE: Final = "Geboortedatum"

REPEATED: Final = frozenset(
    {
        "AangevraagdProduct",
        "Beperking",
        "BeperkingScore",
        "Client",
        "Contact",
        "NieuwProduct",
        "OngewijzigdProduct",
        "Prestatie",
        "Relatie",
        "RetourCode",
        "StartProduct",
        "StopProduct",
        "TeWijzigenProduct",
        "ToegewezenProduct",
    }
)

# A Client is one per message except in a declaratie (323/325: Clienten/Client). Only there is
# it a repeated part; elsewhere its elements belong to the message row.
CLIENT_LIST: Final = "Clienten"

# Parts whose name alone is ambiguous within one message (a client's Contact and a relation's
# Contact; a RetourCode on the header, the client or a product): their file name is qualified by
# the element they belong to, e.g. JW301_ClientContact, JW301_RelatieContact.
QUALIFIED: Final = frozenset({"Contact", "RetourCode"})

# Separator of values of one column when an element occurs more than once without being a part.
MULTI_SEPARATOR: Final = "|"

# Exchange metadata, first columns of every message file (docs/ketendata.md "Exchange metadata").
META_COLUMNS: Final = (
    "EbmsMessageId",
    "EbmsConversationId",
    "Richting",
    "Tijdstip",
    "Gemeentecode",
    "AanbiederAgb",
    "Berichttype",
    "StufReferentienummer",
)
# Relation keys, first columns of every part file: the message and the enclosing part.
PART_KEY_COLUMNS: Final = ("EbmsMessageId", "Regel", "OuderBestand", "OuderRegel")


def main_file(berichttype: str) -> str:
    return f"{berichttype}.csv"


def part_file(berichttype: str, part: str, owner: str | None) -> str:
    """``JW301_ToegewezenProduct.csv``; a QUALIFIED part: ``JW301_ClientContact.csv``."""
    if part in QUALIFIED and owner:
        return f"{berichttype}_{owner}{part}.csv"
    return f"{berichttype}_{part}.csv"
