"""Large StUF-GGk envelopes of an exact size, built deterministically for the large-message tests.

The payload is a WMO305 (Start ondersteuning, aanbieder -> gemeente) with as many made-up clients
(test BSNs of the 9999 range) as the size needs; the envelope is a ggk0210 Di01 from the
aanbieder's AGB to the gemeente. ``build_di01`` refuses to build anything over the 25 000 000
bytes we may *send*, so envelopes up to and over the 25 MiB we *accept* are made from a small
built envelope by putting the large payload's base64 where the small one's was.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from ggk_ebms.stuf.envelope import build_di01
from ggk_ebms.stuf.model import Systeem

MIB: Final = 1024 * 1024
AGB: Final = "65656055"
_NS: Final = "http://www.istandaarden.nl/iwmo/3_2/wmo305/schema"
_PLACEHOLDER: Final = b"<placeholder/>"


@dataclass(frozen=True)
class Sized:
    envelope: bytes = field(repr=False)
    payload: bytes = field(repr=False)
    referentienummer: str


def _client(n: int) -> str:
    return (
        f"<w:Client><w:Bsn>9999{n % 100000:05d}</w:Bsn>"
        f"<w:Commentaar>testclient {n:08d} voor grote berichten</w:Commentaar></w:Client>"
    )


def wmo305_payload(size: int, gemeente: str = "0363") -> bytes:
    """A WMO305 of exactly ``size`` bytes (whole clients, then a short comment as filler)."""
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<w:Bericht xmlns:w="{_NS}"><w:Header>'
        "<w:BerichtCode>418</w:BerichtCode><w:BerichtVersie>3</w:BerichtVersie>"
        f"<w:BerichtSubversie>2</w:BerichtSubversie><w:Afzender>{AGB}</w:Afzender>"
        f"<w:Ontvanger>{gemeente}</w:Ontvanger><w:BerichtIdentificatie><w:Identificatie>GROOT-1"
        "</w:Identificatie><w:Dagtekening>2026-01-05</w:Dagtekening></w:BerichtIdentificatie></w:Header>"
    )
    tail = "</w:Bericht>\n"
    client_size = len(_client(0))
    room = size - len(head) - len(tail) - len("<!---->")
    if room < 0:
        raise ValueError(f"a WMO305 needs at least {size - room} bytes")
    count = room // client_size
    filler = "x" * (room - count * client_size)
    body = "".join(_client(n) for n in range(count))
    data = (head + body + f"<!--{filler}-->" + tail).encode("ascii")
    assert len(data) == size
    return data


def sized_envelope(total: int, *, gemeente: str = "0363") -> Sized:
    """A Di01 envelope of exactly ``total`` bytes around a WMO305 (trailing newlines make up the
    last few bytes the base64's groups of four cannot)."""
    built = build_di01(
        zender=Systeem(AGB, "Zorgsysteem"),
        ontvanger=Systeem(gemeente, "GGk"),
        functie="WMO305",
        payload=_PLACEHOLDER,
        ids=_Ids(),
        tijdstip=datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        functie_versie=3,
        functie_subversie=2,
    )
    small = base64.b64encode(_PLACEHOLDER)
    overhead = len(built.data) - len(small) + 1  # + one newline after the root element
    payload_bytes = (total - overhead) // 4 * 3
    payload = wmo305_payload(payload_bytes, gemeente)
    encoded = base64.b64encode(payload)
    envelope = built.data.replace(small, encoded) + b"\n"
    envelope += b"\n" * (total - len(envelope))
    assert len(envelope) == total
    return Sized(envelope, payload, built.referentienummer)


class _Ids:
    """Fresh referentienummers: each test's envelope is a new message to the endpoint."""

    def uuid(self) -> str:
        return str(uuid.uuid4())

    def message_id(self) -> str:
        return f"{uuid.uuid4()}@large.test"
