"""The inbound decision: one parsed request in, what to store and what to answer out. No I/O.

In the style of pyas2-lib's ``Message.parse(raw, find_org_cb, find_partner_cb, find_message_cb)``:
everything the decision needs from outside comes in as a value or as a callable (``Lookups``), so
the pipeline (pipeline/inbound.py) only loads, calls ``decide`` and commits the outcome in one
transaction, and tests call the decision with dictionaries as lookups and a fixed clock.

Steps, in the order the receiver applies them (ebMS 2.0 §4.2, §6.5; KVS ch. 5; Digikoppeling BEV
ch. 3-5; docs/architecture.md "Data flow"):

- ``read_request``: SOAPAction "ebXML" (KVS5; catalogue #3), multipart/related split, one
  hardened XML parse of the envelope (catalogue #16, #41, #43): a SOAP Fault otherwise;
- ``agreement_view``: the CPA the CPAId names (catalogue #13) and our party in it;
- ``decide``: the TLS client may act for the From party (BEV ch. 3-5: 403 Fault, nothing stored),
  the duplicate fingerprint over the plaintext (ebMS 2.0 §6.5.3), validation against the CPA, the
  security profile of the sender's channel (decrypt, verify: ebMS 2.0 §4.1), then the answer: Pong,
  StatusResponse, Acknowledgment, the effect of a received Ack/MessageError, or a MessageError
  (ebMS 2.0 §4.2.4: never one in answer to an Ack or a MessageError).

Signing our signal is an effect left to the pipeline: the outcome names the channel whose profile
decides (``sign_with``, our MSH signal channel: ebMS 2.0 §6.3, KVS ch. 5, docs/rules.md) and the
pipeline signs with our key before it commits, so the decision needs no key. Decryption and
signature verification are effects too (our private key, the revocation check): they come in as
``Lookups.security``, so that a refusal for a bad signature is still decided here, in its place
among the checks.

The duplicate itself is found by the store, atomically, when the message is stored (UNIQUE
direction+MessageId); what happens then is ``decide_duplicate``, also pure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from lxml import etree

from ggk_ebms.clock import FixedClock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.lookup import ResolvedChannel
from ggk_ebms.cpa.model import Agreement, PartyInfo
from ggk_ebms.ebms import build, fault, parse, validate
from ggk_ebms.ebms.model import EbmsMessage, MessageHeader
from ggk_ebms.errors import CpaError, EbmsError, MimeError, SoapFaultError, XmlError
from ggk_ebms.lifecycle import Status
from ggk_ebms.mime.related import MimePart, RelatedBody, split_body
from ggk_ebms.pipeline import signal_decisions
from ggk_ebms.pipeline.records import new_message_from_received
from ggk_ebms.pipeline.reply import InboundRequest
from ggk_ebms.pipeline.security import Decrypted, Opened
from ggk_ebms.security.identity import authorize_client
from ggk_ebms.security.xmldsig import ack_references
from ggk_ebms.store.messages import NewMessage, NewPart, SignalEffect, StoredMessage

FindMessage = Callable[[str], StoredMessage | None]
SIGNAL_KINDS = ("Acknowledgment", "MessageError", "Pong", "StatusResponse")


# -- inputs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundPolicy:
    """The settings the decision reads (docs/configuration.md), and nothing else of them."""

    party_ids: tuple[str, ...]
    client_cert_mode: str
    gateway_oins: Collection[str]
    legacy_crypto_cpas: Collection[str]
    max_body_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> InboundPolicy:
        return cls(
            party_ids=tuple(settings.party_ids),
            client_cert_mode=settings.client_cert_mode,
            gateway_oins=tuple(settings.gateway_oins),
            legacy_crypto_cpas=frozenset(settings.legacy_crypto_cpas),
            max_body_bytes=settings.max_body_bytes,
        )


@dataclass(frozen=True)
class RequestView:
    """One request, read: its MIME parts, the message, and the envelope's root parsed once (the
    signature is checked on that tree, ebMS 2.0 §4.1.3: what is processed is what was verified)."""

    request: InboundRequest
    body: RelatedBody
    message: EbmsMessage
    root: etree._Element


@dataclass(frozen=True)
class AgreementView:
    """The CPA the message names, our party in it and the counterpart (CPPA 2.0)."""

    agreement: Agreement
    ours: PartyInfo
    theirs: PartyInfo


class InboundSecurity(Protocol):
    """The security profile's effects, as pipeline/security.py ``MessageSecurity`` performs them."""

    def decrypt_received(self, parts: Sequence[MimePart], *, legacy: bool) -> Decrypted: ...

    def open_inbound(
        self,
        soap: bytes | etree._Element,
        decrypted: Decrypted,
        *,
        sender: ResolvedChannel,
        timestamp: datetime,
        legacy: bool = False,
    ) -> Opened: ...


@dataclass(frozen=True)
class Lookups:
    """What the decision may ask of the world: stored messages by MessageId, our MessageIds, and
    the security effects. ``find_sent``/``find_received`` look in one direction each."""

    find_sent: FindMessage
    find_received: FindMessage
    ids: IdGenerator
    security: InboundSecurity

    def known_message_id(self, message_id: str) -> bool:
        # RefToMessageId names a message of this conversation: usually one we sent, but a
        # business answer may also refer to one we received (EB016).
        return self.find_sent(message_id) is not None or self.find_received(message_id) is not None


# -- outcomes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    """What to store in one transaction, and what to answer once it is durable (ack-after-commit).

    ``errors`` is empty for an accepted message; else the message is refused with them, stored as
    Failed, and ``response`` (if any) is the MessageError. ``response`` is unsigned: the pipeline
    signs it per ``sign_with`` before it commits. ``sync``: the signal goes back in the HTTP
    response, else it is stored for the send worker and the request gets 204.
    """

    message: NewMessage
    parts: tuple[NewPart, ...]
    response: build.BuiltMessage | None
    sign_with: ResolvedChannel | None
    sync: bool
    deliver: bool
    effect: SignalEffect | None = None
    errors: tuple[EbmsError, ...] = ()
    context: validate.InboundContext | None = None


@dataclass(frozen=True)
class Fault:
    """Refused before anything is stored: a SOAP Fault (or an empty 500) goes back."""

    error: SoapFaultError


InboundOutcome = Commit | Fault


@dataclass(frozen=True)
class Duplicate:
    """What to do with a message whose MessageId is stored already (ebMS 2.0 §6.5.3, §6.5.6).

    ``mark``: the stored message's key, to record the identical copy in its history; ``answer``:
    'fault' (same MessageId, other content: ``fault``), 'accepted' (204), 'replay' (``envelope``, the
    stored sync signal unchanged) or 'resend' (the stored async signal ``resend`` goes out again).
    """

    answer: Literal["fault", "accepted", "replay", "resend"]
    mark: int | None = None
    fault: SoapFaultError | None = None
    envelope: bytes | None = None
    resend: int | None = None


# -- the decision -----------------------------------------------------------------------------------


def read_request(request: InboundRequest, *, max_bytes: int) -> RequestView:
    """SOAPAction, MIME split and the one parse of the envelope; ``SoapFaultError`` if refused."""
    # KVS5: the SOAPAction header is "ebXML", quotes included; we also take it unquoted.
    if request.soap_action not in ('"ebXML"', "ebXML"):
        raise fault.soap_action_fault(request.soap_action)  # catalogue #3
    try:
        body = split_body(request.content_type, request.content())
    except MimeError as exc:
        raise SoapFaultError(f"Unable to process message! {exc}") from None
    try:
        message, root = parse.parse_envelope_tree(body.soap.data, max_bytes=max_bytes)
    except XmlError as exc:
        # Catalogue #16, #41, #43: not ebXML / XSD-invalid / DOCTYPE -> empty 500.
        raise SoapFaultError(str(exc), body=False) from None
    return RequestView(request, body, message, root)


def agreement_view(agreement: Agreement | None, cpa_id: str, party_ids: Sequence[str]) -> AgreementView:
    """The view of the CPA named ``cpa_id`` (None: none stored); ``SoapFaultError`` if unusable."""
    if agreement is None:
        raise fault.cpa_not_found_fault(cpa_id)  # catalogue #13
    try:
        ours = lookup.own_party(agreement, party_ids)
    except CpaError as exc:
        raise SoapFaultError(f"CPA {agreement.cpa_id} is not an agreement of this endpoint: {exc}") from None
    return AgreementView(agreement, ours, lookup.counterpart(agreement, ours))


def decide(
    view: RequestView, cpa: AgreementView, lookups: Lookups, now: datetime, *, policy: InboundPolicy
) -> InboundOutcome:
    """What to store and answer for ``view`` under ``cpa`` at ``now`` (see the module text)."""
    message = view.message
    header = message.header
    try:
        authenticate(view.request, cpa, header, policy)
    except SoapFaultError as exc:
        return Fault(exc)
    legacy = header.cpa_id in policy.legacy_crypto_cpas
    decrypted = lookups.security.decrypt_received(view.body.attachments, legacy=legacy)
    digest = build.content_digest(message, decrypted.fingerprint_parts())
    clock = FixedClock(now)  # one instant for every timestamp this decision writes
    try:
        context = validate.validate_inbound(
            message,
            cpa.agreement,
            our_party_ids=policy.party_ids,
            now=now,
            attachment_ids=[p.content_id for p in view.body.attachments if p.content_id],
            known_message_ids=lookups.known_message_id,
        )
    except EbmsError as exc:
        return _refuse(view, digest, (exc,), wants_sync(message, cpa.theirs), cpa.ours, lookups.ids, clock)
    try:
        # Security profile (docs/signing.md): decrypt, then verify, per the sender's channel; from here on
        # only the verified plaintext is used (ebMS 2.0 §4.1.3: what is processed is what was verified).
        opened = lookups.security.open_inbound(
            view.root, decrypted, sender=context.sender_channel, timestamp=header.timestamp, legacy=legacy
        )
    except EbmsError as exc:
        return _refuse(view, digest, (exc,), context.sync_reply, cpa.ours, lookups.ids, clock)
    return _accept(view, context, opened, digest, lookups, clock)


def authenticate(
    request: InboundRequest, cpa: AgreementView, header: MessageHeader, policy: InboundPolicy
) -> str:
    """Digikoppeling BEV ch. 3-5: the TLS client certificate must belong to the From party of this CPA;
    returns why it may, raises a 403 ``SoapFaultError`` why not.

    When the From PartyId is not in the CPA at all, the certificate is checked against the CPA's
    counterpart, so that an authenticated partner with a wrong header still gets the catalogue's
    MessageError (#14, #15) instead of a bare refusal.
    """
    agreement = cpa.agreement
    claimed = cpa.theirs
    from_party_id = cpa.theirs.party_ids[0].value
    for pid in header.from_party.party_ids:
        party = lookup.find_party(agreement, pid.value, pid.type)
        if party is not None:
            claimed, from_party_id = party, pid.value
            break
    cpa_certs = [
        c.der
        for c in (lookup.resolve_channel(claimed, ch).client_certificate for ch in claimed.channels)
        if c is not None and c.der is not None
    ]
    reasons: list[str] = []
    candidates: list[bytes | None] = list(cpa_certs) or [None]
    for der in candidates:
        try:
            return authorize_client(
                request.peer,
                cpa_client_cert_der=der,
                from_party_id=from_party_id,
                mode="strict" if policy.client_cert_mode == "strict" else "cpa-or-oin",
                may_act_for=policy.gateway_oins,
            )
        except SoapFaultError as exc:
            reasons.append(exc.faultstring)
    raise SoapFaultError(f"Invalid TLS client certificate: {reasons[-1]}", http_status=403)


def wants_sync(message: EbmsMessage, theirs: PartyInfo) -> bool:
    """Signals go back in the HTTP response when asked (SyncReply) or when the sender's MSH
    channel is mshSignalsOnly (ebMS 2.0 §4.3, BP EB015; ebMS 2.0 §7-§8)."""
    if message.sync_reply is not None:
        return True
    try:
        return lookup.msh_signal_channel(theirs).sync_reply
    except CpaError:
        return False


def signing_channel(ours: PartyInfo, kind: str) -> ResolvedChannel | None:
    """Our MSH signal channel for a signal of ``kind``: its profile says whether we sign it (ebMS 2.0
    §6.3, KVS ch. 5; our choice in docs/rules.md). None: the CPA names none, the signal goes unsigned."""
    try:
        return lookup.msh_signal_channel(ours, kind)
    except CpaError:
        return None


def decide_duplicate(
    received: NewMessage, *, find_received: FindMessage, find_response: FindMessage
) -> Duplicate:
    """A message with this MessageId is stored already (ebMS 2.0 §6.5.3).

    ``find_response(message_id)`` is the signal we stored in answer to that MessageId, or None.
    """
    existing = find_received(received.message_id)
    if existing is None or existing.content_digest != received.content_digest:
        # Same MessageId, other content: no delivery, no Ack.
        return Duplicate("fault", fault=fault.message_id_reused_fault(received.message_id))
    # ebMS 2.0 §6.5.6: an identical copy is not delivered again; it is part of the history.
    if received.kind in SIGNAL_KINDS:
        return Duplicate("accepted", mark=existing.pk)
    stored = find_response(received.message_id)
    if stored is None:
        return Duplicate("accepted", mark=existing.pk)
    if stored.sync_reply and stored.envelope:
        # Replay the stored signal unchanged: same MessageId and Timestamp (ebMS 2.0 §6.5.3, IT #11).
        return Duplicate("replay", mark=existing.pk, envelope=stored.envelope)
    return Duplicate("resend", mark=existing.pk, resend=stored.pk)


# -- steps ------------------------------------------------------------------------------------------


def _refuse(
    view: RequestView,
    digest: str,
    errors: tuple[EbmsError, ...],
    sync: bool,
    ours: PartyInfo,
    ids: IdGenerator,
    clock: FixedClock,
) -> Commit:
    message = view.message
    first = errors[0]
    response: build.BuiltMessage | None = None
    if message.kind not in ("Acknowledgment", "MessageError"):
        # Never answer an error with an error (ebMS 2.0 §4.2.4); the message is kept for the record.
        response = build.build_message_error(message, errors, ids=ids, clock=clock)
    record = new_message_from_received(
        message,
        view.request.content_type,
        digest,
        status=Status.FAILED,
        reason=first.description,
        error_code=str(first.code),
        envelope=view.body.soap.data,
    )
    return Commit(
        record,
        _parts(view.body.attachments),
        response,
        signing_channel(ours, response.kind) if response is not None else None,
        sync=sync,
        deliver=False,
        errors=errors,
    )


def _accept(
    view: RequestView,
    context: validate.InboundContext,
    opened: Opened,
    digest: str,
    lookups: Lookups,
    clock: FixedClock,
) -> Commit:
    message = view.message
    header = message.header
    kind = message.kind
    response: build.BuiltMessage | None = None
    status = Status.PROCESSED
    deliver = False
    effect: SignalEffect | None = None
    if kind == "Ping":
        response = build.build_pong(message, ids=lookups.ids, clock=clock)
    elif kind == "StatusRequest":
        assert message.status_request is not None
        value, at = signal_decisions.status_of(
            message.status_request.ref_to_message_id, header.cpa_id, find_received=lookups.find_received
        )
        response = build.build_status_response(
            message, status=value, status_timestamp=at, ids=lookups.ids, clock=clock
        )
    elif kind in ("Acknowledgment", "MessageError"):
        effect = signal_decisions.signal_effect(message, find_sent=lookups.find_sent)
    elif kind in ("Pong", "StatusResponse"):
        pass  # processed; nothing to answer
    else:
        status = Status.RECEIVED
        deliver = True
        if message.ack_requested is not None or context.sender_channel.ack_requested:
            # From of the Ack = the PartyId the sender addressed us by (ebMS 2.0 §6.3).
            our_pid = header.to_party.party_ids[0]
            # A signed message gets its ds:References echoed in the Ack (ebMS 2.0 §6.3, KVS ch. 5).
            references = ack_references(opened.signature) if opened.signature is not None else []
            response = build.build_acknowledgment(
                message, ids=lookups.ids, clock=clock, our_party=our_pid, references=references
            )
    record = new_message_from_received(
        message, view.request.content_type, digest, status=status, envelope=view.body.soap.data
    )
    return Commit(
        record,
        _parts(opened.parts),
        response,
        signing_channel(context.our_party, response.kind) if response is not None else None,
        sync=context.sync_reply,
        deliver=deliver,
        effect=effect,
        context=context,
    )


def _parts(attachments: Sequence[MimePart]) -> tuple[NewPart, ...]:
    return tuple(NewPart.of(p.content_id or "", p.content_type, p.content) for p in attachments)
