"""The messages the load generator sends: real ebMS 2.0 (osb-rm) carrying a StUF-wrapped WMO301.

Each template is built once with the project's own builders (this is load, not a correctness
test): a synthetic iWmo 3.2 WMO301 of the asked size, wrapped in a ggk0210 Di01 envelope, carried
as the one payload part of a SwA ebMS message from RINIS to the gemeente, with the flags of the
CPA's sending channel (AckRequested, DuplicateElimination, SyncReply). Per request only the
MessageId changes, by a byte replacement in the prepared body, so the client spends its CPU on
sending rather than on building XML; every request is a new message to the endpoint.

The payloads hold made-up clients only (test BSNs of the 9999 range, invented names): no personal
data, not even in a benchmark.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from bench.common import ACTION_DI01, RINIS, SERVICE
from ggk_ebms.config import Settings
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.ebms.build import build_business_message
from ggk_ebms.mime.related import MimePart, build_related, split_body
from ggk_ebms.pipeline.outbound import resolve_business_route, typed_party_id
from ggk_ebms.pipeline.security import MessageSecurity
from ggk_ebms.stuf.envelope import build_di01
from ggk_ebms.stuf.model import Systeem

SMALL: Final = 2 * 1024
LARGE: Final = 1024 * 1024
# The mix: 85% ~2 KB and 15% ~1 MB. Three of every twenty messages are large, spread out.
_LARGE_SLOTS: Final = frozenset({3, 10, 17})
_PLACEHOLDER: Final = "BENCH-MESSAGE-ID-PLACEHOLDER@bench.test"
# The StUF referentienummer must be new per message too (delivery refuses a repeated one as a
# duplicate); a UUID v4 as the ggk0210 pattern wants, replaced per message like the MessageId.
_REFERENTIE: Final = "00000000-0000-4000-8000-000000000000"
# The payload's BerichtIdentificatie is unique per afzender in real traffic (iWmo/iJw); one value
# shared by every message made each a koppeltabel relation of all earlier ones (up to 1000 each),
# work no real stream causes. Replaced per message in its base64 form (12 bytes, 16 characters).
_IDENTIFICATIE: Final = "BENCH0000001"
_IDENTIFICATIE_B64: Final = base64.b64encode(_IDENTIFICATIE.encode())
_serial = itertools.count(1)

# berichttype -> (BerichtCode, Afzender, Ontvanger, Di01 zender, Di01 ontvanger): WMO301 goes
# from gemeente 0363 to aanbieder 42420001 (what the gemeente sends), WMO305 from the aanbieder
# to the gemeente (what it receives and delivers); payload header and envelope must agree.
_FLOWS: Final = {
    "WMO301": ("414", "0363", "42420001"),
    "WMO305": ("418", "42420001", "0363"),
}
_IWMO_NS: Final = "http://www.istandaarden.nl/iwmo/3_2/basisschema/schema"


def _client(n: int, prefix: str) -> str:
    # 9999-range BSNs are reserved for testing; the names say what they are.
    return (
        f"<{prefix}:Client>"
        f"<{prefix}:Bsn>9999{n % 100000:05d}</{prefix}:Bsn>"
        f"<{prefix}:Geboortedatum><iwmo:Datum>1970-01-01</iwmo:Datum></{prefix}:Geboortedatum>"
        f"<{prefix}:Geslacht>0</{prefix}:Geslacht>"
        f"<{prefix}:Naam><iwmo:Geslachtsnaam><iwmo:Achternaam>Proefpersoon</iwmo:Achternaam>"
        f"</iwmo:Geslachtsnaam><iwmo:Voorletters>B</iwmo:Voorletters></{prefix}:Naam>"
        f"<{prefix}:Commentaar>benchmark client {n}</{prefix}:Commentaar>"
        f"</{prefix}:Client>"
    )


def iwmo_payload(target_bytes: int, berichttype: str = "WMO301", identificatie: int = 1) -> bytes:
    """An iWmo 3.2 message of about ``target_bytes`` (whole clients are added until it is reached).

    ``identificatie`` numbers the BerichtIdentificatie, which iStandaarden want unique per
    afzender: the koppeltabel (docs/koppeltabel.md) links messages sharing one, so a run that
    repeats it makes every message a relative of every earlier one, which real traffic never does.
    """
    code, afzender, ontvanger = _FLOWS[berichttype]
    p = berichttype.lower()
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<{p}:Bericht xmlns:{p}="http://www.istandaarden.nl/iwmo/3_2/{p}/schema" xmlns:iwmo="{_IWMO_NS}">'
        f"<{p}:Header><{p}:BerichtCode>{code}</{p}:BerichtCode>"
        f"<{p}:BerichtVersie>3</{p}:BerichtVersie><{p}:BerichtSubversie>2</{p}:BerichtSubversie>"
        f"<{p}:Afzender>{afzender}</{p}:Afzender><{p}:Ontvanger>{ontvanger}</{p}:Ontvanger>"
        f"<{p}:BerichtIdentificatie><iwmo:Identificatie>BENCH{identificatie:07d}</iwmo:Identificatie>"
        f"<iwmo:Dagtekening>2026-01-01</iwmo:Dagtekening></{p}:BerichtIdentificatie>"
        f"<{p}:XsdVersie><iwmo:BasisschemaXsdVersie>1.0.0</iwmo:BasisschemaXsdVersie>"
        f"<iwmo:BerichtXsdVersie>1.0.0</iwmo:BerichtXsdVersie></{p}:XsdVersie></{p}:Header>"
    )
    # Pad the XML declaration so the Identificatie starts on a 3-byte boundary: its base64 inside
    # the envelope is then a whole 16-character run that body_for can swap per message.
    head = head.replace("?>", "?>" + " " * (-head.index(f"BENCH{identificatie:07d}") % 3), 1)
    tail = f"</{p}:Bericht>"
    clients: list[str] = []
    size = len(head) + len(tail)
    for n in itertools.count(1):
        client = _client(n, p)
        clients.append(client)
        size += len(client)
        if size >= target_bytes:
            break
    return (head + "".join(clients) + tail).encode("utf-8")


def stuf_di01(envelope_bytes: int, berichttype: str = "WMO301", identificatie: int = 1) -> bytes:
    """A ggk0210 Di01 heenbericht whose whole envelope is about ``envelope_bytes`` long.

    The WMO301 travels base64-encoded (4/3 larger) inside about 1 KB of stuurgegevens.
    """
    smallest = iwmo_payload(0, berichttype)
    overhead = len(_di01(smallest, berichttype)) - len(smallest) * 4 // 3
    size = max(len(smallest), (envelope_bytes - overhead) * 3 // 4)
    payload = iwmo_payload(size, berichttype, identificatie)
    return _di01(payload, berichttype)


def numbered_stuf(envelope_bytes: int, number: int, berichttype: str = "WMO301") -> bytes:
    """``stuf_di01`` with BerichtIdentificatie ``number`` and a referentienummer of its own: what
    a queue of distinct messages holds (bench/outbound.py)."""
    stuf = stuf_di01(envelope_bytes, berichttype, identificatie=number)
    return stuf.replace(_REFERENTIE.encode(), str(uuid.uuid4()).encode(), 1)


def _di01(payload: bytes, berichttype: str) -> bytes:
    """The envelope, with referentienummer _REFERENTIE (replaced per message by body_for)."""
    built = build_di01(
        zender=Systeem(_FLOWS[berichttype][1], "WmoBench"),
        ontvanger=Systeem(_FLOWS[berichttype][2], "WmoBench"),
        functie=berichttype,
        payload=payload,
        ids=_FixedIds(),
        tijdstip=datetime.now(UTC),
        functie_versie=3,
        functie_subversie=2,
    )
    return built.data


class _FixedIds:
    """IdGenerator giving the seed referentienummer, so the template has a known one to replace."""

    def uuid(self) -> str:
        return _REFERENTIE

    def message_id(self) -> str:
        return f"{_REFERENTIE}@bench.test"


@dataclass(frozen=True)
class Template:
    """One prepared HTTP request; ``body_for`` gives the bytes with a fresh MessageId."""

    content_type: str
    body: bytes
    envelope_size: int

    def body_for(self, message_id: str) -> bytes:
        body = self.body.replace(_PLACEHOLDER.encode(), message_id.encode())
        body = body.replace(_REFERENTIE.encode(), str(uuid.uuid4()).encode(), 1)
        identificatie = base64.b64encode(f"B{next(_serial) % 10**11:011d}".encode())
        return body.replace(_IDENTIFICATIE_B64, identificatie, 1)


def ebms_template(agreement: Agreement, stuf: bytes, *, sender: Settings) -> Template:
    """A business message from ``sender`` (RINIS) to the other party of ``agreement``."""
    route = resolve_business_route(agreement, sender, service=SERVICE, action=ACTION_DI01, role=None)
    channel = route.channel
    now = datetime.now(UTC)
    content_id = f"{uuid.uuid4()}@bench.test"
    built = build_business_message(
        cpa_id=agreement.cpa_id,
        from_party=typed_party_id(route.from_party, [RINIS]),
        from_role=route.binding.role,
        to_party=typed_party_id(route.to_party),
        to_role=route.to_role,
        service=SERVICE,
        service_type=route.binding.service_type,
        action=ACTION_DI01,
        conversation_id=str(uuid.uuid4()),
        message_id=_PLACEHOLDER,
        timestamp=now,
        # Well past any run's length, inside the CPA's validity.
        time_to_live=now + timedelta(hours=6) if channel.profile.reliable else None,
        ack_requested=channel.ack_requested,
        ack_signed=channel.ack_signature_requested,
        duplicate_elimination=channel.duplicate_elimination,
        sync_reply=channel.sync_reply,
        content_ids=[content_id],
    )
    content_type, body = build_related(built.envelope, [MimePart(content_id, "text/xml", stuf)])
    return Template(content_type, body, len(stuf))


class Mix(Protocol):
    """What the load generator draws messages from: a MessageMix or a SignedPool."""

    def next(self) -> tuple[str, Template]: ...


class MessageMix:
    """Templates by size, handed out per message number: all small, or 85/15 small/large.

    ``small`` may be several templates differing in their BerichtIdentificatie, taken in turn,
    so the koppeltabel of the receiving side sees few messages sharing one (``iwmo_payload``).
    """

    def __init__(self, small: Template | Sequence[Template], large: Template | None) -> None:
        self.smalls = (small,) if isinstance(small, Template) else tuple(small)
        self.small, self.large = self.smalls[0], large
        self._ids = itertools.count()
        self._run = uuid.uuid4().hex[:12]

    def template(self, number: int) -> Template:
        if self.large is not None and number % 20 in _LARGE_SLOTS:
            return self.large
        return self.smalls[number % len(self.smalls)]

    def next(self) -> tuple[str, Template]:
        number = next(self._ids)
        return f"{self._run}-{number:09d}@bench.test", self.template(number)

    def __iter__(self) -> Iterator[tuple[str, Template]]:
        while True:
            yield self.next()


def build_mix(
    agreement: Agreement, sender: Settings, *, mixed: bool, berichttype: str = "WMO301"
) -> MessageMix:
    # One small template: Template.body_for gives each message a BerichtIdentificatie of its own.
    smalls = [ebms_template(agreement, stuf_di01(SMALL, berichttype), sender=sender)]
    large = ebms_template(agreement, stuf_di01(LARGE, berichttype), sender=sender) if mixed else None
    return MessageMix(smalls, large)


class PoolExhausted(Exception):
    """Every prepared signed message has been sent."""


class SignedPool:
    """Signed messages (osb-rm-s), each signed ahead of the run because the signature covers the
    MessageId: per-request signing would spend the load generator's CPU, not the server's.

    ``cycle`` hands the same messages out again when the pool runs dry (for the no-op baseline,
    which does not care); otherwise the pool ends the phase (``PoolExhausted``).
    """

    def __init__(self, agreement: Agreement, sender: Settings, size: int, *, cycle: bool = False) -> None:
        route = resolve_business_route(agreement, sender, service=SERVICE, action=ACTION_DI01, role=None)
        security = MessageSecurity(sender)
        stuf = stuf_di01(SMALL)
        self.cycle = cycle
        self._next = 0
        self.items: list[tuple[str, Template]] = []
        run = uuid.uuid4().hex[:12]
        for number in range(size):
            message_id = f"{run}-s{number:09d}@bench.test"
            template = ebms_template(agreement, stuf, sender=sender)
            built_id = template.body_for(message_id)
            soap, attachments = _split_for_signing(template.content_type, built_id)
            signed, sealed = security.seal(soap, attachments, ours=route.channel, peer=route.peer_channel)
            content_type, body = build_related(signed, sealed)
            self.items.append((message_id, Template(content_type, body, len(stuf))))

    def next(self) -> tuple[str, Template]:
        if self._next >= len(self.items):
            if not self.cycle:
                raise PoolExhausted
            self._next = 0
        item = self.items[self._next]
        self._next += 1
        return item

    def split(self) -> tuple[SignedPool, SignedPool]:
        """Two pools, two thirds and one third of the messages: the maximum-rate phase cannot use
        up the messages of the latency phase (at half that rate, it needs about half as many)."""
        cut = len(self.items) * 2 // 3
        first, second = object.__new__(SignedPool), object.__new__(SignedPool)
        first.cycle, first._next, first.items = False, 0, self.items[:cut]
        second.cycle, second._next, second.items = False, 0, self.items[cut:]
        return first, second

    def again(self) -> SignedPool:
        """The same messages as a cycling pool (for the baseline)."""
        twin = object.__new__(SignedPool)
        twin.cycle, twin._next, twin.items = True, 0, self.items
        return twin


def _split_for_signing(content_type: str, body: bytes) -> tuple[bytes, list[MimePart]]:
    related = split_body(content_type, body)
    return related.soap.data, list(related.attachments)
