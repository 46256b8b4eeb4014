"""Outbound business messages: the submit API and the decisions the sending worker applies.

``submit_message`` is the one way in for everything we send (the CLI's ``send``, and later the
StUF routing and management work): it resolves the CPA, builds the envelope ONCE and stores it
with its parts and a 'send' job in one transaction. A retry sends the stored bytes again, same
MessageId and all, so the partner's duplicate elimination recognises it (ebMS 2.0 §6.5.3:
a resend is never a new MessageId).

The rest of this module is pure glue between one HTTP attempt and the retry module
(``transport.retry``, KVS ch. 5 HTTP status handling; ebMS 2.0 §6.4, BP ch. 3; ebMS 2.0 §7.1.2,
docs/rules.md): ``read_response`` says what a response envelope
holds, ``current_slot`` counts ebMS attempts, ``business_verdict``/``signal_verdict`` decide what
happens to the message and its job. The worker (``pipeline.worker``) does the I/O around them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Literal, Protocol

from ggk_ebms import lifecycle
from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.model import ActionBinding, Agreement, PartyInfo
from ggk_ebms.ebms.build import build_business_message, content_digest
from ggk_ebms.ebms.model import EbmsMessage, PartyId
from ggk_ebms.ebms.parse import parse_envelope, peer_fault
from ggk_ebms.errors import CpaError, CpaNotFoundError, EbmsError, GgkEbmsError, TransportError
from ggk_ebms.lifecycle import Event, Status
from ggk_ebms.logformat import log_fields
from ggk_ebms.mime.related import MimePart, related_pieces, split_body
from ggk_ebms.ns import PARTY_TYPE_OIN
from ggk_ebms.pipeline.agreements import AgreementCache, process_cache
from ggk_ebms.pipeline.records import new_message_from_built
from ggk_ebms.pipeline.reply import SOAP_CONTENT_TYPE
from ggk_ebms.pipeline.security import MessageSecurity
from ggk_ebms.security.xmldsig import SignedReference, check_ack_references, signed_references
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import Attempt
from ggk_ebms.store.messages import MessageStore, NewPart, StoredMessage, StoredPart
from ggk_ebms.store.stuf import StufRecord
from ggk_ebms.transport.result import HttpResult, Layer
from ggk_ebms.transport.retry import (
    DEFAULT_POLICY,
    ResponseClass,
    RetryPolicy,
    SignalKind,
    classify_error,
    classify_response,
    classify_signal,
    next_attempt,
    time_to_live,
    transport_retry_at,
    when_retries_end,
)
from ggk_ebms.wakeup import Wakeup

log = logging.getLogger(__name__)

# CPPA 2.0; docs/rules.md receive-side check 2: only an agreed (or agreed and signed) CPA may carry messages.
_USABLE_CPA_STATUS: Final = frozenset({"agreed", "signed"})
# Appended to an attempt's error text when a quick transport retry follows inside the same
# RetryInterval, so the attempt log alone tells ebMS attempts from transport retries.
TRANSPORT_RETRY_MARK: Final = " [transport retry]"
# Decision: a signal we send (async Acknowledgment, MessageError, Pong, StatusResponse) is tried
# a few times over about 40 minutes, then given up: the partner's own retry of the message it
# answers makes us send the stored signal again (ebMS 2.0 §6.5.3), so nothing is lost for good.
SIGNAL_RETRY_DELAYS: Final = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
)
_MAX_RESPONSE_ENVELOPE: Final = 1024 * 1024


class OutgoingPart(Protocol):
    """A payload part to send; ``ggk_ebms.store.messages.NewPart`` is one."""

    @property
    def content_id(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def data(self) -> bytes: ...


# --- waking a worker in the same process ---------------------------------------------------------

# A submit wakes the send worker of this process at once instead of at its next poll.
_submitted = Wakeup()
add_submit_listener = _submitted.add_listener
_notify_submitted = _submitted.notify


# --- CPA resolution ----------------------------------------------------------------------------------


def load_agreement(
    database: Database, cpa_id: str, *, max_cpa_bytes: int, agreements: AgreementCache | None = None
) -> Agreement:
    """The stored CPA ``cpa_id``, parsed once per process (``agreements``, or the process's cache
    for this database). Raises CpaNotFoundError when it is not imported."""
    cache = agreements if agreements is not None else process_cache(database, max_cpa_bytes=max_cpa_bytes)
    agreement = cache.get(cpa_id)
    if agreement is None:
        raise CpaNotFoundError(f"no CPA with CPAId {cpa_id!r} is imported; see `ggk-ebms cpa list`")
    return agreement


def check_usable(agreement: Agreement, now: datetime) -> None:
    """CPPA 2.0; docs/rules.md receive-side check 2: the CPA must
    be agreed and inside its validity period to send on it."""
    if agreement.status not in _USABLE_CPA_STATUS:
        raise CpaError(f"CPA {agreement.cpa_id!r} has status {agreement.status!r}, not agreed or signed")
    if not agreement.start <= now < agreement.end:
        raise CpaError(
            f"CPA {agreement.cpa_id!r} is valid from {agreement.start:%Y-%m-%d %H:%M} to "
            f"{agreement.end:%Y-%m-%d %H:%M} UTC, not now"
        )


def typed_party_id(party: PartyInfo, preferred: Sequence[str] = ()) -> PartyId:
    """The PartyId to put in From/To: one of ``preferred`` if the party has it, an OIN
    (KVS5: PartyId type urn:osb:oin) before any other type, else the first."""
    ids = list(party.party_ids)
    if not ids:
        raise CpaError(f"party {party.party_name!r} has no PartyId")
    ranked = sorted(ids, key=lambda p: (p.value not in preferred, p.type != PARTY_TYPE_OIN))
    return PartyId(ranked[0].value, ranked[0].type)


def _our_binding(party: PartyInfo, service: str, action: str, role: str | None) -> ActionBinding:
    candidates = [
        b
        for b in party.bindings
        if b.direction == "send"
        and b.service == service
        and b.action == action
        and (role is None or b.role == role)
    ]
    if not candidates:
        role_text = f" in role {role!r}" if role else ""
        raise CpaError(
            f"party {party.party_name!r} may not send service {service!r}, action {action!r}{role_text} "
            "under this CPA (no CanSend binding)"
        )
    roles = sorted({(b.role, b.service_type or "") for b in candidates})
    if len(roles) > 1:
        raise CpaError(
            f"party {party.party_name!r} can send {action!r} in more than one role "
            f"({', '.join(r for r, _ in roles)}); say which"
        )
    return candidates[0]


def resolve_business_route(
    agreement: Agreement, settings: Settings, *, service: str, action: str, role: str | None
) -> lookup.SendingRoute:
    """Our CanSend binding and the peer's channel for (service, action), or CpaError."""
    ours = lookup.own_party(agreement, settings.party_ids)
    binding = _our_binding(ours, service, action, role)
    route = lookup.sending_route(
        agreement, ours, role=binding.role, service=service, service_type=binding.service_type, action=action
    )
    if not route.peer_channel.endpoint_uri:
        raise CpaError(f"CPA {agreement.cpa_id!r}: the receiving party's channel has no endpoint")
    return route


# --- submit ------------------------------------------------------------------------------------------


def submit_message(
    settings: Settings,
    database: Database,
    *,
    cpa_id: str,
    service: str,
    action: str,
    parts: Sequence[OutgoingPart],
    conversation_id: str | None = None,
    ids: IdGenerator,
    clock: Clock,
    role: str | None = None,
    agreements: AgreementCache | None = None,
    stuf: StufRecord | None = None,
) -> StoredMessage:
    """Queue a business message to the other party of CPA ``cpa_id``; returns it as stored.

    The envelope follows the sending channel (Digikoppeling KVS ch. 3, BP ch. 3; ebMS 2.0 §3.1, KVS ch. 5;
    ebMS 2.0 §4.3, BP EB015): MessageId ``uuid@host``
    from ``ids``, ConversationId new unless given, Timestamp now (UTC), for reliable channels
    TimeToLive = Timestamp + RetryInterval × (Retries + 1) (ebMS 2.0 §6.4, BP ch. 3), AckRequested,
    DuplicateElimination and SyncReply as the channel says, a Manifest with one ``cid:`` per part.
    The message is stored 'Created' with a 'send' job due now. Raises CpaError (unknown or
    unusable CPA, no binding, unsupported profile) and StoreError; nothing is stored then.
    """
    now = clock.now()
    agreement = load_agreement(database, cpa_id, max_cpa_bytes=settings.max_cpa_bytes, agreements=agreements)
    check_usable(agreement, now)
    route = resolve_business_route(agreement, settings, service=service, action=action, role=role)
    content_ids = [part.content_id for part in parts]
    if len(set(content_ids)) != len(content_ids) or not all(content_ids):
        raise ValueError("every part needs its own non-empty Content-ID")
    channel = route.channel
    ttl = None
    if channel.profile.reliable and channel.retries is not None and channel.retry_interval is not None:
        ttl = time_to_live(now, channel.retries, channel.retry_interval)
    built = build_business_message(
        cpa_id=agreement.cpa_id,
        from_party=typed_party_id(route.from_party, settings.party_ids),
        from_role=route.binding.role,
        to_party=typed_party_id(route.to_party),
        to_role=route.to_role,
        service=service,
        service_type=route.binding.service_type,
        action=action,
        conversation_id=conversation_id or ids.uuid(),
        message_id=ids.message_id(),
        timestamp=now,
        time_to_live=ttl,
        ack_requested=channel.ack_requested,
        ack_signed=channel.ack_signature_requested,
        duplicate_elimination=channel.duplicate_elimination,
        sync_reply=channel.sync_reply,
        content_ids=content_ids,
    )
    mime_parts = [MimePart(p.content_id, p.content_type, p.data) for p in parts]
    # Security profile (docs/signing.md): sign per our channel, then encrypt to the receiver (-e), once, at
    # submit: what is stored is exactly what every attempt sends, so a resend is byte-identical.
    envelope, sealed = MessageSecurity(settings).seal(
        built.envelope, mime_parts, ours=channel, peer=route.peer_channel
    )
    record = replace(
        new_message_from_built(built, sync=channel.sync_reply, status=Status.CREATED),
        envelope=envelope,
        content_digest=content_digest(EbmsMessage(header=built.header), mime_parts),
        content_type="multipart/related" if parts else SOAP_CONTENT_TYPE,
    )
    store = MessageStore(database, clock)
    stored_parts = [NewPart(p.content_id or "", p.content_type, p.data) for p in sealed]
    pk = store.submit(record, stored_parts, due_at=now, stuf=stuf)
    log.info(
        "queued %s (%s/%s) on CPA %s",
        built.header.message_id,
        service,
        action,
        cpa_id,
        extra=log_fields(message_id=built.header.message_id, cpa_id=cpa_id),
    )
    _notify_submitted()
    return store.get(pk)


def http_body(envelope: bytes, parts: Sequence[StoredPart]) -> tuple[str, bytes | list[bytes]]:
    """(Content-Type, body) of a stored message: text/xml alone, or SwA when it has parts
    (SwA 1.1; Digikoppeling ebMS2 carries payloads as MIME parts). The boundary is derived from
    the content, so every retry sends the same bytes. A SwA body comes as pieces (the parts' own
    bytes between MIME headers) for the HTTP client to stream: no joined copy of a large payload."""
    if not parts:
        return SOAP_CONTENT_TYPE, envelope
    return related_pieces(envelope, [MimePart(p.content_id, p.content_type, p.data) for p in parts])


# --- reading the answer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseSignal:
    """What the envelope in a 2xx response means for the message we sent (KVS ch. 5 HTTP status handling)."""

    kind: SignalKind
    message: EbmsMessage | None  # the parsed signal, to keep in the message log
    soap: bytes
    error_code: str | None = None
    description: str | None = None


def read_response(
    result: HttpResult, message_id: str, sent_references: Sequence[SignedReference] = ()
) -> ResponseSignal | None:
    """The signal in a response body, or None for an empty body.

    An Acknowledgment or MessageError counts only when it refers to ``message_id``
    (RefToMessageId, ebMS 2.0 §6.3, §4.2); a MessageError of warnings only, a SOAP Fault, an
    unreadable body or a signal about another message are ``OTHER``. ``sent_references`` are
    the ds:References of what we signed: an Ack echoing references must echo exactly those
    (ebMS 2.0 §6.3, KVS ch. 5), else it is ``OTHER`` — ignored, and the retries go on (ebMS 2.0 §6.5.3).
    """
    if not result.body.strip():
        return None
    try:
        soap = split_body(result.content_type or "text/xml", result.body).soap.data
    except GgkEbmsError:
        return ResponseSignal(SignalKind.OTHER, None, b"")
    try:
        message = parse_envelope(soap, max_bytes=_MAX_RESPONSE_ENVELOPE)
    except GgkEbmsError:
        return ResponseSignal(SignalKind.OTHER, None, soap)
    ref = message.header.ref_to_message_id
    if message.kind == "Acknowledgment":
        acked = message.acknowledgment.ref_to_message_id if message.acknowledgment else ref
        if acked == message_id and acknowledgment_matches(message, sent_references):
            return ResponseSignal(SignalKind.ACKNOWLEDGMENT, message, soap)
    elif message.kind == "MessageError" and ref == message_id and message.error_list is not None:
        errors = [e for e in message.error_list.errors if e.severity != "Warning"]
        if errors:
            return ResponseSignal(
                SignalKind.MESSAGE_ERROR, message, soap, errors[0].code, errors[0].description
            )
    return ResponseSignal(SignalKind.OTHER, message, soap)


def references_we_signed(envelope: bytes | None) -> tuple[SignedReference, ...]:
    """The ds:References of a message we signed (none for an unsigned one)."""
    if not envelope or b"Signature" not in envelope:
        return ()
    return signed_references(envelope)


def acknowledgment_matches(ack: EbmsMessage, sent_references: Sequence[SignedReference]) -> bool:
    """False for an Ack whose echoed references differ from what we signed (ebMS 2.0 §6.3, KVS ch. 5).

    An Ack without references is accepted: the CPAs of the GGk say ackSignatureRequested never.
    """
    if not sent_references or ack.acknowledgment is None or not ack.acknowledgment.references:
        return True
    try:
        check_ack_references(ack.acknowledgment, sent_references)
    except EbmsError:
        log.warning("Acknowledgment %s ignored: its references do not match", ack.header.message_id)
        return False
    return True


def describe_failure(outcome: HttpResult | TransportError) -> str:
    """The attempt's error text: our own words, hosts, statuses and a SOAP faultstring, never
    a response body (no payload or personal data in the attempt log)."""
    if isinstance(outcome, TransportError):
        return f"{outcome.layer or Layer.HTTP.value}: {outcome}"
    text = f"HTTP {outcome.status}"
    if outcome.body.strip():
        try:
            soap = split_body(outcome.content_type or "text/xml", outcome.body).soap.data
        except GgkEbmsError:
            return text
        fault = peer_fault(soap)
        if fault is not None:
            text += f", SOAP Fault {fault.faultcode}: {fault.faultstring}"[:300]
    return text


# --- attempts and decisions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """The ebMS attempt an HTTP attempt belongs to (ebMS 2.0 §6.4, BP ch. 3; KVS5: transport retries fit
    inside one RetryInterval). ``number`` is 1-based; ``failures`` counts this attempt too."""

    number: int
    started: datetime
    failures: int


def current_slot(previous: Sequence[Attempt], now: datetime) -> Slot:
    """The slot of an attempt made at ``now`` after ``previous`` (oldest first). An attempt
    starts a new slot unless the one before it scheduled a quick transport retry."""
    starts = [
        i
        for i, a in enumerate(previous)
        if i == 0 or not (previous[i - 1].error or "").endswith(TRANSPORT_RETRY_MARK)
    ]
    if not previous or not (previous[-1].error or "").endswith(TRANSPORT_RETRY_MARK):
        return Slot(len(starts) + 1, now, 1)
    first = starts[-1]
    return Slot(len(starts), previous[first].started_at, len(previous) - first + 1)


@dataclass(frozen=True)
class Verdict:
    """What one attempt leads to: the attempt record, the job and (maybe) the message status."""

    outcome: Literal["ok", "retry", "fail"]  # for JobQueue.record_attempt
    error: str | None  # the attempt's error text
    job: Literal["complete", "retry", "fail"]
    due_at: datetime | None  # for job == "retry"
    event: Event | None  # the lifecycle event for the message, or None to leave it
    reason: str
    error_code: str | None = None


@dataclass(frozen=True)
class ChannelFacts:
    """What the decision needs from the sending channel (ebMS 2.0 §6.4, BP ch. 3; ebMS 2.0 §4.3, BP EB015)."""

    reliable: bool
    sync_reply: bool
    retries: int
    retry_interval: timedelta | None


def channel_facts(route: lookup.SendingRoute) -> ChannelFacts:
    channel = route.channel
    reliable = channel.profile.reliable
    return ChannelFacts(
        reliable=reliable,
        sync_reply=channel.sync_reply,
        retries=(channel.retries or 0) if reliable else 0,
        retry_interval=channel.retry_interval if reliable else None,
    )


def expiry_verdict(time_to_live_at: datetime | None, now: datetime) -> Verdict | None:
    """Before an attempt: past TimeToLive nothing is sent any more; Expired (ebMS 2.0 §6.4, BP ch. 3)."""
    if time_to_live_at is not None and now >= time_to_live_at:
        return Verdict(
            "fail", None, "complete", None, Event.EXPIRED, "TimeToLive passed without an Acknowledgment"
        )
    return None


def business_verdict(
    outcome: HttpResult | TransportError,
    signal: ResponseSignal | None,
    *,
    facts: ChannelFacts,
    time_to_live_at: datetime | None,
    slot: Slot,
    now: datetime,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> Verdict:
    """Apply the retry table (KVS ch. 5 HTTP status handling) and the retry timing (ebMS 2.0 §6.4, BP ch. 3)
    to one attempt's
    outcome."""
    if isinstance(outcome, TransportError):
        response_class = classify_error(outcome)
    else:
        response_class = classify_response(
            outcome.status,
            reliable=facts.reliable,
            body_is_envelope=signal is not None and signal.message is not None,
            sync_reply=facts.sync_reply,
            policy=policy,
        )
        if response_class is ResponseClass.INSPECT:
            assert signal is not None
            response_class = classify_signal(
                signal.kind, reliable=facts.reliable, sync_reply=facts.sync_reply
            )
    if response_class is ResponseClass.DELIVERED:
        reason = (
            "Acknowledgment received in the response"
            if signal is not None and signal.kind is SignalKind.ACKNOWLEDGMENT
            else "accepted by the partner (best effort)"
        )
        return Verdict("ok", None, "complete", None, Event.ACCEPTED, reason)
    if response_class is ResponseClass.FAILED:
        if signal is not None and signal.kind is SignalKind.MESSAGE_ERROR:
            text = f"MessageError {signal.error_code}: {signal.description or 'no description'}"[:500]
            return Verdict("fail", text, "fail", None, Event.MESSAGE_ERROR, text, signal.error_code)
        text = describe_failure(outcome)
        return Verdict("fail", text, "fail", None, Event.SEND_FAILED, f"{text} (not recoverable)")
    retry_interval = facts.retry_interval or timedelta(0)
    later = next_attempt(
        policy=policy,
        attempt=slot.number,
        retries=facts.retries,
        retry_interval=retry_interval,
        time_to_live=time_to_live_at,
        now=now,
    )
    if response_class is ResponseClass.AWAIT_ACK:
        if later is not None:
            return Verdict(
                "ok", None, "retry", later, Event.AWAITING_ACK, "accepted; waiting for the Acknowledgment"
            )
        event, at = when_retries_end(time_to_live=time_to_live_at, now=now)
        if event is Event.EXPIRED:
            return Verdict(
                "ok",
                None,
                "retry",
                at,
                Event.AWAITING_ACK,
                "retries used up; waiting for the Acknowledgment until TimeToLive",
            )
        return Verdict("ok", None, "fail", None, Event.SEND_FAILED, "no Acknowledgment and no retries left")
    text = describe_failure(outcome)
    if isinstance(outcome, TransportError):
        quick = transport_retry_at(
            policy=policy,
            layer=outcome.layer,
            reliable=facts.reliable,
            failures_in_slot=slot.failures,
            slot_started=slot.started,
            retry_interval=facts.retry_interval,
            time_to_live=time_to_live_at,
            now=now,
        )
        if quick is not None:
            return Verdict("retry", text + TRANSPORT_RETRY_MARK, "retry", quick, Event.RETRY_SCHEDULED, text)
    if later is not None:
        return Verdict("retry", text, "retry", later, Event.RETRY_SCHEDULED, text)
    event, at = when_retries_end(time_to_live=time_to_live_at, now=now)
    if event is Event.EXPIRED:
        return Verdict(
            "retry",
            text,
            "retry",
            at,
            Event.RETRY_SCHEDULED,
            f"{text}; no retries left, Expired at TimeToLive",
        )
    return Verdict("fail", text, "fail", None, Event.SEND_FAILED, f"{text}; no retries left")


def signal_verdict(
    outcome: HttpResult | TransportError,
    *,
    attempt: int,
    now: datetime,
    delays: Sequence[timedelta] = SIGNAL_RETRY_DELAYS,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> Verdict:
    """A signal we send: 2xx is Sent; a recoverable failure is retried ``len(delays)`` times
    (KVS ch. 5 HTTP status handling table, best effort: the signal carries no AckRequested), then Failed."""
    if isinstance(outcome, HttpResult) and 200 <= outcome.status <= 299:
        return Verdict("ok", None, "complete", None, Event.SIGNAL_SENT, "sent to the partner's MSH channel")
    text = describe_failure(outcome)
    if isinstance(outcome, TransportError):
        response_class = classify_error(outcome)
    else:
        response_class = classify_response(
            outcome.status, reliable=False, body_is_envelope=False, policy=policy
        )
    if response_class is ResponseClass.RETRY and attempt <= len(delays):
        return Verdict("retry", text, "retry", now + delays[attempt - 1], None, text)
    return Verdict("fail", text, "fail", None, Event.SIGNAL_GIVEN_UP, f"{text}; given up")


def is_final(message: StoredMessage) -> bool:
    return lifecycle.is_final(lifecycle.flow_of(message.direction, message.kind), message.status)
