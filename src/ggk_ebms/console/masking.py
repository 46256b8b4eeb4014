"""Mask BSN and names in an iWmo/iJw/iEb payload for users without the right to see them (pure).

The iStandaarden basisschema carries the client's identity in ``Bsn`` and the name elements of
``Naam`` (Geslachtsnaam, Voornamen, Voorletters, Voorvoegsel, Partnernaam); those are replaced by
asterisks before a payload is shown. A payload that is not well-formed XML is not shown at all.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.xml import local_name, parse

PERSONAL_ELEMENTS: Final = frozenset(
    {"Bsn", "Geslachtsnaam", "Voornamen", "Voorletters", "Voorvoegsel", "Partnernaam", "Achternaam"}
)
MASK: Final = "*****"


def mask_personal(data: bytes) -> str:
    """The payload as text with every personal element's text replaced by ``MASK``."""
    try:
        root = parse(data, what="payload")
    except GgkEbmsError:
        return "(payload is geen leesbare XML en wordt daarom niet getoond)"
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if local_name(element) in PERSONAL_ELEMENTS and element.text and element.text.strip():
            element.text = MASK
    return etree.tostring(root, encoding="unicode", pretty_print=True)


def as_text(data: bytes) -> str:
    """The payload for a user who may see personal data (pretty-printed when it is XML)."""
    try:
        root = parse(data, what="payload")
    except GgkEbmsError:
        return data.decode("utf-8", "replace")
    return etree.tostring(root, encoding="unicode", pretty_print=True)
