"""Call the inbound decision (pipeline/inbound_decision.py) directly: a request made of bytes,
dictionaries as the stored-message lookups, a fixed clock and sequence MessageIds, and security
effects that stand in for our keys. Nothing is stored; the tests read the returned outcome."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from ggk_ebms.clock import SequenceIdGenerator
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.lookup import ResolvedChannel
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.errors import EbmsError
from ggk_ebms.mime.related import MimePart, build_related
from ggk_ebms.pipeline.inbound_decision import (
    AgreementView,
    InboundOutcome,
    InboundPolicy,
    Lookups,
    RequestView,
    agreement_view,
    decide,
    read_request,
)
from ggk_ebms.pipeline.reply import InboundRequest
from ggk_ebms.pipeline.security import Decrypted, Opened
from ggk_ebms.security.identity import PeerIdentity
from ggk_ebms.store.messages import StoredMessage

MAX_BYTES = 1024 * 1024
EBXML = '"ebXML"'


def peer_with_oin(oin: str) -> PeerIdentity:
    """A TLS client whose certificate carries ``oin`` (PKI001); no CPA certificate matches its bytes,
    so it is accepted by OIN (mode cpa-or-oin), as a partner's PKIoverheid certificate would be."""
    moment = datetime(2020, 1, 1, tzinfo=UTC)
    return PeerIdentity(
        der=b"not the CPA certificate",
        fingerprint_sha256="00" * 32,
        subject=f"serialNumber={oin}",
        issuer="CN=test",
        oin=oin,
        not_before=moment,
        not_after=moment.replace(year=2040),
        serial_number=1,
    )


@dataclass
class StandInSecurity:
    """The security effects without keys: nothing is encrypted, nothing signed. ``refusal`` makes
    the security step fail the way a bad signature or cipher does; ``calls`` records the channels
    each step was asked to apply."""

    refusal: EbmsError | None = None
    calls: list[str] = field(default_factory=list)

    def decrypt_received(self, parts: Sequence[MimePart], *, legacy: bool) -> Decrypted:
        self.calls.append("decrypt")
        return Decrypted.unencrypted(parts)

    def open_inbound(
        self,
        soap: bytes | etree._Element,
        decrypted: Decrypted,
        *,
        sender: ResolvedChannel,
        timestamp: datetime,
        legacy: bool = False,
    ) -> Opened:
        self.calls.append(f"open:{sender.channel.channel_id}")
        if self.refusal is not None:
            raise self.refusal
        return Opened(list(decrypted.received), None)


def request(
    envelope: bytes,
    attachments: Sequence[MimePart] = (),
    *,
    peer: PeerIdentity | None,
    soap_action: str | None = EBXML,
) -> InboundRequest:
    content_type, body = (
        build_related(envelope, list(attachments)) if attachments else ("text/xml; charset=UTF-8", envelope)
    )
    return InboundRequest(content_type, soap_action, body, peer, "test")


def policy(our_party_ids: Sequence[str], *, mode: str = "cpa-or-oin") -> InboundPolicy:
    return InboundPolicy(
        party_ids=tuple(our_party_ids),
        client_cert_mode=mode,
        gateway_oins=(),
        legacy_crypto_cpas=(),
        max_body_bytes=MAX_BYTES,
    )


def known_as(known: Callable[[str], bool], stored: StoredMessage) -> Callable[[str], StoredMessage | None]:
    """A lookup that finds ``stored`` for every MessageId ``known`` accepts."""
    return lambda message_id: stored if known(message_id) else None


def decide_on(
    envelope: bytes,
    agreement: Agreement,
    *,
    our_party_ids: Sequence[str],
    now: datetime,
    peer: PeerIdentity | None,
    attachments: Sequence[MimePart] = (),
    sent: Mapping[str, StoredMessage] | Callable[[str], StoredMessage | None] = {},  # noqa: B006
    received: Mapping[str, StoredMessage] | Callable[[str], StoredMessage | None] = {},  # noqa: B006
    security: StandInSecurity | None = None,
    soap_action: str | None = EBXML,
) -> tuple[RequestView, AgreementView, InboundOutcome]:
    """Read the request, look the CPA up among {``agreement``} and decide, as the pipeline does.

    Refusals before the decision (SOAPAction, MIME, XML, unknown CPA) raise ``SoapFaultError``.
    """
    view = read_request(
        request(envelope, attachments, peer=peer, soap_action=soap_action), max_bytes=MAX_BYTES
    )
    cpa_id = view.message.header.cpa_id
    cpa = agreement_view(agreement if cpa_id == agreement.cpa_id else None, cpa_id, our_party_ids)
    lookups = Lookups(
        find_sent=sent if callable(sent) else sent.get,
        find_received=received if callable(received) else received.get,
        ids=SequenceIdGenerator("gemeente.test"),
        security=security or StandInSecurity(),
    )
    return view, cpa, decide(view, cpa, lookups, now, policy=policy(our_party_ids))


def stored_message(
    message_id: str,
    *,
    direction: str,
    status: str,
    cpa_id: str,
    kind: str = "business",
    pk: int = 7,
    at: datetime = datetime(2026, 6, 1, 12, 0, tzinfo=UTC),
    **changes: object,
) -> StoredMessage:
    """A row as the store would return it, for the lookups."""
    values: dict[str, object] = {
        "pk": pk,
        "direction": direction,
        "message_id": message_id,
        "cpa_id": cpa_id,
        "conversation_id": "conversation-1",
        "from_party_id": "from",
        "to_party_id": "to",
        "service": "service",
        "action": "action",
        "kind": kind,
        "timestamp": at,
        "status": status,
        "created_at": at,
        "updated_at": at,
    }
    values.update(changes)
    return StoredMessage(**values)  # type: ignore[arg-type]


def sender_peer(envelope: bytes, agreement: Agreement, our_party_ids: Sequence[str]) -> PeerIdentity:
    """A TLS client carrying the OIN of the From party of ``envelope`` when the CPA knows it, else
    that of the CPA's other party: the client check passes and validation decides."""
    for pid in parse_envelope(envelope, max_bytes=MAX_BYTES).header.from_party.party_ids:
        if lookup.find_party(agreement, pid.value, pid.type) is not None:
            return peer_with_oin(pid.value)
    theirs = agreement_view(agreement, agreement.cpa_id, our_party_ids).theirs
    return peer_with_oin(theirs.party_ids[0].value)
