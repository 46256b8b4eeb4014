"""Inbound pipeline: one HTTP request in, one reply out, with the message durably stored first.

Order of work (docs/architecture.md "Data flow", ebMS 2.0
§4.2; KVS ch. 5, CPPA 2.0; Digikoppeling BEV ch. 3-5):

1. SOAPAction must be "ebXML" (KVS5)                    -> else 500 Fault Client
2. split multipart/related, hardened XML parse, ebMS    -> MIME/XML/XSD problems: 500 Fault / empty
3. CPA by CPAId                                         -> unknown: 500 Fault "CPA … not found!"
4. TLS client certificate may act for the From party   -> else 403 Fault, nothing stored
5. duplicate MessageId: same content -> replay the stored signal; other content -> 500 Fault
6. validation against the CPA                           -> MessageError (sync 200, or async + 204)
7. ONE transaction: message, parts, the signal to return, the delivery job
8. only then the reply: sync Acknowledgment / Pong / StatusResponse / MessageError, or 204

Nothing is acknowledged before step 7 has committed; if the database is down the sender gets 503
and retries (ack-after-commit). Logs carry ids, CPAId, action and outcome, never payload bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.model import Agreement, PartyInfo
from ggk_ebms.delivery import wakeup
from ggk_ebms.ebms import build, fault, parse, validate
from ggk_ebms.ebms.model import EbmsMessage, MessageHeader
from ggk_ebms.errors import (
    CpaError,
    DuplicateMessageError,
    EbmsError,
    MimeError,
    SoapFaultError,
    StoreError,
    StoreUnavailableError,
    XmlError,
)
from ggk_ebms.lifecycle import Event, Status
from ggk_ebms.logformat import log_fields
from ggk_ebms.mime.related import MimePart, RelatedBody, split_body
from ggk_ebms.pipeline import signal_decisions
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.pipeline.records import new_message_from_built, new_message_from_received
from ggk_ebms.pipeline.reply import InboundRequest, Reply, fault_reply
from ggk_ebms.pipeline.security import MessageSecurity
from ggk_ebms.security.identity import authorize_client
from ggk_ebms.security.xmldsig import VerifiedSignature, ack_references
from ggk_ebms.store.messages import MessageStore, NewMessage, NewPart, SignalEffect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Outcome:
    """What to store and what to answer for one accepted request."""

    message: NewMessage
    parts: Sequence[NewPart]
    response: build.BuiltMessage | None
    sync: bool
    deliver: bool
    effect: SignalEffect | None = None


class InboundPipeline:
    def __init__(
        self,
        settings: Settings,
        store: MessageStore,
        agreements: AgreementCache,
        *,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._settings = settings
        self._store = store
        self._agreements = agreements
        self._clock = clock
        self._ids = ids
        self._security = MessageSecurity(settings)

    # -- entry point ------------------------------------------------------------------------------

    def handle(self, request: InboundRequest) -> Reply:
        try:
            return self._handle(request)
        except SoapFaultError as exc:
            log.info(
                "refused request from %s: %s (HTTP %d)", request.remote, exc.faultstring, exc.http_status
            )
            return fault_reply(exc)
        except StoreUnavailableError as exc:
            log.error("database unavailable, answering 503 so the sender retries: %s", exc)
            return fault_reply(
                SoapFaultError("Service temporarily unavailable, retry later.", "Server", http_status=503)
            )
        except StoreError as exc:
            log.error("database error, nothing acknowledged: %s", exc)
            return fault_reply(SoapFaultError("Message could not be stored.", "Server", http_status=500))
        except Exception:
            # Nothing was acknowledged; the sender's retry gets another chance.
            log.exception("unexpected failure handling a request from %s", request.remote)
            return fault_reply(SoapFaultError("Internal error.", "Server", http_status=500))

    def _handle(self, request: InboundRequest) -> Reply:
        # KVS5: the SOAPAction header is "ebXML", quotes included; we also take it unquoted.
        if request.soap_action not in ('"ebXML"', "ebXML"):
            raise fault.soap_action_fault(request.soap_action)  # catalogue #3
        try:
            body = split_body(request.content_type, request.body)
        except MimeError as exc:
            raise SoapFaultError(f"Unable to process message! {exc}") from None
        try:
            message = parse.parse_envelope(body.soap.data, max_bytes=self._settings.max_body_bytes)
        except XmlError as exc:
            # Catalogue #16, #41, #43: not ebXML / XSD-invalid / DOCTYPE -> empty 500.
            log.info("unparseable envelope from %s: %s", request.remote, exc)
            raise SoapFaultError(str(exc), body=False) from None

        header = message.header
        agreement = self._agreements.get(header.cpa_id)
        if agreement is None:
            raise fault.cpa_not_found_fault(header.cpa_id)  # catalogue #13
        ours = self._own_party(agreement)
        theirs = lookup.counterpart(agreement, ours)
        self._authenticate(request, agreement, header, theirs)

        # Duplicates (ebMS 2.0 §6.5.3) are found by the store itself, atomically, when the message
        # is stored (UNIQUE direction+MessageId): no lookup per request on the hot path. The
        # fingerprint decides, then, whether the copy is identical.
        legacy = header.cpa_id in self._settings.legacy_crypto_cpas
        digest = build.content_digest(
            message, self._security.fingerprint_parts(body.attachments, legacy=legacy)
        )

        now = self._clock.now()
        sync = self._wants_sync(message, theirs)
        try:
            context = validate.validate_inbound(
                message,
                agreement,
                our_party_ids=self._settings.party_ids,
                now=now,
                attachment_ids=[p.content_id for p in body.attachments if p.content_id],
                known_message_ids=self._known_outbound,
            )
        except EbmsError as exc:
            return self._refuse(request, message, body, digest, [exc], sync, ours)
        try:
            # Security profile (docs/signing.md): decrypt, then verify, per the sender's channel; from here on
            # only the verified plaintext is used (ebMS 2.0 §4.1.3: what is processed is what was verified).
            opened = self._security.open_inbound(
                body.soap.data,
                body.attachments,
                sender=context.sender_channel,
                timestamp=header.timestamp,
                legacy=legacy,
            )
        except EbmsError as exc:
            return self._refuse(request, message, body, digest, [exc], context.sync_reply, ours)
        outcome = self._accept(message, context, body, opened.parts, opened.signature, digest, request)
        return self._commit(outcome)

    # -- steps ------------------------------------------------------------------------------------

    def _own_party(self, agreement: Agreement) -> PartyInfo:
        try:
            return lookup.own_party(agreement, self._settings.party_ids)
        except CpaError as exc:
            raise SoapFaultError(
                f"CPA {agreement.cpa_id} is not an agreement of this endpoint: {exc}"
            ) from None

    def _authenticate(
        self, request: InboundRequest, agreement: Agreement, header: MessageHeader, theirs: PartyInfo
    ) -> None:
        """Digikoppeling BEV ch. 3-5 rule: the TLS client certificate must belong to the From party of this
        CPA.

        When the From PartyId is not in the CPA at all, the certificate is checked against the
        CPA's counterpart, so that an authenticated partner with a wrong header still gets the
        catalogue's MessageError (#14, #15) instead of a bare refusal.
        """
        claimed = theirs
        from_party_id = theirs.party_ids[0].value
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
                why = authorize_client(
                    request.peer,
                    cpa_client_cert_der=der,
                    from_party_id=from_party_id,
                    mode="strict" if self._settings.client_cert_mode == "strict" else "cpa-or-oin",
                    may_act_for=self._settings.gateway_oins,
                )
            except SoapFaultError as exc:
                reasons.append(exc.faultstring)
                continue
            log.debug("client accepted for CPA %s: %s", agreement.cpa_id, why)
            return
        log.warning(
            "refused client certificate from %s for CPA %s: %s", request.remote, agreement.cpa_id, reasons[-1]
        )
        raise SoapFaultError(f"Invalid TLS client certificate: {reasons[-1]}", http_status=403)

    def _wants_sync(self, message: EbmsMessage, theirs: PartyInfo) -> bool:
        """Signals go back in the HTTP response when asked (SyncReply) or when the sender's MSH
        channel is mshSignalsOnly (ebMS 2.0 §4.3, BP EB015; ebMS 2.0 §7-§8)."""
        if message.sync_reply is not None:
            return True
        try:
            return lookup.msh_signal_channel(theirs).sync_reply
        except CpaError:
            return False

    def _known_outbound(self, message_id: str) -> bool:
        # RefToMessageId names a message of this conversation: usually one we sent, but a
        # business answer may also refer to one we received (EB016).
        return (
            self._store.find("out", message_id) is not None or self._store.find("in", message_id) is not None
        )

    def _duplicate(self, received: NewMessage) -> Reply:
        """A message with this MessageId is stored already (ebMS 2.0 §6.5.3)."""
        existing = self._store.find("in", received.message_id)
        if existing is None or existing.content_digest != received.content_digest:
            # Same MessageId, other content: no delivery, no Ack.
            raise fault.message_id_reused_fault(received.message_id)
        # ebMS 2.0 §6.5.6: an identical copy is not delivered again; it is part of the history.
        self._store.transition(existing.pk, Event.DUPLICATE, "identical copy received, not delivered again")
        if received.kind in ("Acknowledgment", "MessageError", "Pong", "StatusResponse"):
            log.info("duplicate %s %s dropped", received.kind, received.message_id)
            return Reply.accepted()
        stored = self._store.response_to(
            received.message_id, ("Acknowledgment", "MessageError", "Pong", "StatusResponse")
        )
        log.info("duplicate %s %s: not delivered again", received.kind, received.message_id)
        if stored is None:
            return Reply.accepted()
        if stored.sync_reply and stored.envelope:
            # Replay the stored signal unchanged: same MessageId and Timestamp (ebMS 2.0 §6.5.3, IT #11).
            return Reply.signal(stored.envelope)
        self._store.resend(stored.pk, due_at=self._clock.now())
        return Reply.accepted()

    def _refuse(
        self,
        request: InboundRequest,
        message: EbmsMessage,
        body: RelatedBody,
        digest: str,
        errors: Sequence[EbmsError],
        sync: bool,
        ours: PartyInfo,
    ) -> Reply:
        first = errors[0]
        log.info(
            "message %s (%s) refused: %s at %s",
            message.header.message_id,
            message.header.action,
            first.code,
            first.location,
            extra=log_fields(message_id=message.header.message_id, cpa_id=message.header.cpa_id),
        )
        if message.kind in ("Acknowledgment", "MessageError"):
            # Never answer an error with an error (ebMS 2.0 §4.2.4); keep it for the record.
            error_signal = None
        else:
            error_signal = self._signed(
                build.build_message_error(message, errors, ids=self._ids, clock=self._clock), ours
            )
        record = new_message_from_received(
            message,
            request.content_type,
            digest,
            status=Status.FAILED,
            reason=first.description,
            error_code=str(first.code),
            envelope=body.soap.data,
        )
        return self._commit(
            _Outcome(record, _parts(body.attachments), error_signal, sync=sync, deliver=False)
        )

    def _accept(
        self,
        message: EbmsMessage,
        context: validate.InboundContext,
        body: RelatedBody,
        parts: Sequence[MimePart],
        signature: VerifiedSignature | None,
        digest: str,
        request: InboundRequest,
    ) -> _Outcome:
        sync = context.sync_reply
        kind = message.kind
        header = message.header
        response: build.BuiltMessage | None = None
        status = Status.RECEIVED
        deliver = False
        effect: SignalEffect | None = None
        if kind == "Ping":
            response = build.build_pong(message, ids=self._ids, clock=self._clock)
            status = Status.PROCESSED
        elif kind == "StatusRequest":
            assert message.status_request is not None
            status_value, at = self._status_of(message.status_request.ref_to_message_id, header.cpa_id)
            response = build.build_status_response(
                message, status=status_value, status_timestamp=at, ids=self._ids, clock=self._clock
            )
            status = Status.PROCESSED
        elif kind == "Acknowledgment" or kind == "MessageError":
            effect = self._signal_effect(message)
            status = Status.PROCESSED
        elif kind in ("Pong", "StatusResponse"):
            status = Status.PROCESSED
        else:
            deliver = True
            if message.ack_requested is not None or context.sender_channel.ack_requested:
                # From of the Ack = the PartyId the sender addressed us by (ebMS 2.0 §6.3).
                our_pid = header.to_party.party_ids[0]
                # A signed message gets its ds:References echoed in the Ack (ebMS 2.0 §6.3, KVS ch. 5).
                references = ack_references(signature) if signature is not None else []
                response = build.build_acknowledgment(
                    message, ids=self._ids, clock=self._clock, our_party=our_pid, references=references
                )
        record = new_message_from_received(
            message, request.content_type, digest, status=status, envelope=body.soap.data
        )
        log.info(
            "received %s %s (%s/%s) on CPA %s",
            kind,
            header.message_id,
            header.service.value,
            header.action,
            header.cpa_id,
            extra=log_fields(message_id=header.message_id, cpa_id=header.cpa_id),
        )
        if response is not None:
            response = self._signed(response, context.our_party)
        return _Outcome(record, _parts(parts), response, sync=sync, deliver=deliver, effect=effect)

    def _status_of(self, ref: str, cpa_id: str) -> tuple[str, datetime | None]:
        return signal_decisions.status_of(ref, cpa_id, find_received=lambda i: self._store.find("in", i))

    def _signal_effect(self, message: EbmsMessage) -> SignalEffect | None:
        effect = signal_decisions.signal_effect(message, find_sent=lambda i: self._store.find("out", i))
        if effect is None:
            log.info("%s about %s changes nothing", message.kind, message.header.ref_to_message_id)
        return effect

    def _signed(self, built: build.BuiltMessage, ours: PartyInfo) -> build.BuiltMessage:
        """Our signals are signed when our MSH signal channel signs (ebMS 2.0 §6.3, KVS ch. 5; our choice in
        docs/rules.md)."""
        try:
            channel = lookup.msh_signal_channel(ours, built.kind)
        except CpaError:
            return built
        return self._security.sign_signal(built, channel)

    def _commit(self, outcome: _Outcome) -> Reply:
        response_record = None
        if outcome.response is not None:
            response_record = new_message_from_built(outcome.response, sync=outcome.sync)
        try:
            self._store.receive(
                outcome.message,
                outcome.parts,
                response=response_record,
                deliver=outcome.deliver,
                send_response_async=outcome.response is not None and not outcome.sync,
                effect=outcome.effect,
            )
        except DuplicateMessageError:
            return self._duplicate(outcome.message)
        if outcome.deliver:
            # Committed: the delivery worker of this process may start on it now (delivery/wakeup.py).
            wakeup.notify()
        if outcome.response is not None and outcome.sync:
            return Reply.signal(outcome.response.envelope)
        return Reply.accepted()


def _parts(attachments: Sequence[MimePart]) -> list[NewPart]:
    return [
        NewPart(content_id=p.content_id or "", content_type=p.content_type, data=p.data) for p in attachments
    ]
