"""Flatten one iStandaarden payload into rows: one message row and one row per repeated part.

The column of a value is the path of element names below the message (``Client_Bsn``,
``Header_BerichtIdentificatie_Identificatie``) or below its part (``Product_Code``). Element
names only; namespaces differ per berichttype and release and carry no meaning for a reader.
See docs/ketendata.md for the rules and the relation keys.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from ggk_ebms.ketendata.columns import (
    BIRTH_DATE,
    CLIENT_LIST,
    DROPPED,
    HASHED,
    MULTI_SEPARATOR,
    NINE_DIGIT_DOMAIN,
    REPEATED,
    main_file,
    part_file,
)
from ggk_ebms.ketendata.hashing import KeyedHasher
from ggk_ebms.xml import local_name, parse

MAX_PAYLOAD_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True)
class MessageMeta:
    """The exchange metadata of one message (no personal data)."""

    ebms_message_id: str
    ebms_conversation_id: str
    richting: str  # "ontvangen" or "verzonden"
    tijdstip: datetime
    gemeentecode: str
    aanbieder_agb: str
    berichttype: str
    stuf_referentienummer: str

    def columns(self) -> dict[str, str]:
        return {
            "EbmsMessageId": self.ebms_message_id,
            "EbmsConversationId": self.ebms_conversation_id,
            "Richting": self.richting,
            "Tijdstip": self.tijdstip.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Gemeentecode": self.gemeentecode,
            "AanbiederAgb": self.aanbieder_agb,
            "Berichttype": self.berichttype,
            "StufReferentienummer": self.stuf_referentienummer,
        }


@dataclass
class Row:
    file: str
    values: dict[str, str] = field(default_factory=dict)

    def put(self, column: str, value: str) -> None:
        old = self.values.get(column)
        self.values[column] = value if old is None else f"{old}{MULTI_SEPARATOR}{value}"


_NINE_DIGITS = re.compile(r"(?<!\d)\d{9}(?!\d)")


def elfproef(digits: str) -> bool:
    """The BSN 11-test: weights 9..2 and -1 for the last digit, total divisible by 11."""
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total % 11 == 0


def looks_like_bsn(text: str) -> bool:
    """Whether ``text`` holds a run of exactly nine digits passing the elfproef (a VAT number of a
    sole trader used to embed the owner's BSN: NL123456782B01)."""
    return any(elfproef(m) for m in _NINE_DIGITS.findall(text))


def _is_part(el: etree._Element) -> bool:
    name = local_name(el)
    if name not in REPEATED:
        return False
    if name == "Client":
        parent = el.getparent()
        return parent is not None and local_name(parent) == CLIENT_LIST
    return True


class _Flattener:
    def __init__(self, meta: MessageMeta, hasher: KeyedHasher) -> None:
        self.meta = meta
        self.hasher = hasher
        self.rows: list[Row] = []
        self.counters: Counter[str] = Counter()

    def walk(
        self,
        el: etree._Element,
        row: Row,
        prefix: str,
        owner: str,
        row_file: str,
        row_regel: str,
    ) -> None:
        for child in el:
            if not isinstance(child.tag, str):
                continue  # comments and processing instructions carry no data
            name = local_name(child)
            if name in DROPPED:
                continue
            if _is_part(child):
                self._part(child, name, owner, row_file, row_regel)
            elif len(child) == 0:
                self._leaf(child, name, row, prefix, el)
            else:
                # Client and Header name the owner of a qualified part (ClientContact).
                child_owner = name if name in ("Client", "Header") else owner
                self.walk(child, row, f"{prefix}{name}_", child_owner, row_file, row_regel)

    def _part(self, el: etree._Element, name: str, owner: str, parent_file: str, parent_regel: str) -> None:
        file = part_file(self.meta.berichttype, name, owner)
        self.counters[file] += 1
        regel = str(self.counters[file])
        row = Row(file)
        row.values.update(
            EbmsMessageId=self.meta.ebms_message_id,
            Regel=regel,
            OuderBestand=parent_file,
            OuderRegel=parent_regel,
        )
        self.rows.append(row)
        if len(el) == 0:  # a repeated simple element (RetourCode): its value is the row
            self._leaf(el, name, row, "", el.getparent())
        else:
            self.walk(el, row, "", name, file, regel)

    def _leaf(
        self, el: etree._Element, name: str, row: Row, prefix: str, parent: etree._Element | None
    ) -> None:
        text = (el.text or "").strip()
        if not text:
            return
        if name in HASHED:
            row.put(prefix + name, self.hasher.hash(HASHED[name], text))
        elif looks_like_bsn(text):
            row.put(prefix + name, self.hasher.hash(NINE_DIGIT_DOMAIN, text))
        elif parent is not None and local_name(parent) == BIRTH_DATE and name == "Datum":
            row.put(prefix + "Jaar", text[:4])
        else:
            row.put(prefix + name, text)


def flatten(payload: bytes, meta: MessageMeta, hasher: KeyedHasher) -> list[Row]:
    """The rows of one message: its message row first, then its part rows in document order."""
    root = parse(payload, max_bytes=MAX_PAYLOAD_BYTES, what="payload")
    flattener = _Flattener(meta, hasher)
    message_row = Row(main_file(meta.berichttype), dict(meta.columns()))
    flattener.rows.append(message_row)
    flattener.walk(root, message_row, "", "", message_row.file, "")
    return flattener.rows
