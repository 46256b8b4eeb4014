"""The koppeltabel file of a Ketendata set (docs/ketendata.md "Koppeltabel.csv"). Pure.

One row per relation whose later message is in the set: both messages by their ebMS MessageId
(the ``EbmsMessageId`` column of the message files), the relation, the element that established
it and its value. The value is hashed exactly as the same element is in the message files
(``columns.HASHED``: a ToewijzingNummer here equals the hashed ToewijzingNummer of the 301 and
305 rows); a crossRefnummer is a StUF referentienummer, which the message files carry in plain
as ``StufReferentienummer``, and stays plain so the two join.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ggk_ebms.ketendata.columns import HASHED
from ggk_ebms.ketendata.fileset import CsvFile, csv_bytes
from ggk_ebms.ketendata.hashing import KeyedHasher
from ggk_ebms.koppeltabel import Via
from ggk_ebms.store.koppeltabel import RelationRow

KOPPEL_FILE: Final = "Koppeltabel.csv"
KOPPEL_COLUMNS: Final = (
    "EerderEbmsMessageId",
    "EerderBerichttype",
    "LaterEbmsMessageId",
    "LaterBerichttype",
    "Gemeentecode",
    "Relatie",
    "VastgesteldVia",
    "Sleutel",
)
# The hash domain of each way a relation is established: the element's own domain.
_DOMAIN: Final[dict[str, str | None]] = {
    Via.TOEWIJZING_NUMMER.value: HASHED["ToewijzingNummer"],
    Via.BESCHIKKING_NUMMER.value: HASHED["BeschikkingNummer"],
    Via.REFERENTIE_AANBIEDER.value: HASHED["ReferentieAanbieder"],
    Via.BERICHT_IDENTIFICATIE.value: HASHED["Identificatie"],
    Via.DECLARATIE_IDENTIFICATIE.value: HASHED["Identificatie"],
    Via.CROSS_REFNUMMER.value: None,
}


def sleutel(via: str, value: str, hasher: KeyedHasher) -> str:
    domain = _DOMAIN.get(via, "koppeltabel")  # an unknown way is hashed, never shown
    return value if domain is None else hasher.hash(domain, value)


def koppel_file(relations: Iterable[RelationRow], hasher: KeyedHasher) -> CsvFile:
    rows = [
        {
            "EerderEbmsMessageId": r.earlier_message_id,
            "EerderBerichttype": r.earlier_berichttype or "",
            "LaterEbmsMessageId": r.later_message_id,
            "LaterBerichttype": r.later_berichttype or "",
            "Gemeentecode": r.gemeentecode or "",
            "Relatie": r.relation,
            "VastgesteldVia": r.via,
            "Sleutel": sleutel(r.via, r.value, hasher),
        }
        for r in relations
    ]
    return CsvFile(KOPPEL_FILE, csv_bytes(list(KOPPEL_COLUMNS), rows), len(rows))
