"""Receive-side validation of a parsed ebMS message against
its CPA (CPPA 2.0; docs/rules.md receive-side checks 2–5).

``validate_inbound`` raises the first ``EbmsError`` it finds, with the code, location and
description of the negative-case catalogue (docs/ebms.md catalogue), or returns the ``InboundContext`` the
pipeline needs to answer and deliver. Unknown CPAId (step 1) is the caller's: it looks the CPA up
first and answers ``cpa_not_found_fault`` (#13). Client certificates and signatures (step 6) belong
to the security layer.

Order of the checks (one wrong thing per catalogue case, so the order only matters when several
are wrong; it follows the reference's validators: CPA first, then the MessageHeader, then the
channel flags, then the other header blocks, then the body):

1. CPA status and period at the message Timestamp and now CPPA 2.0; docs/rules.md receive-side check 2
2. MessageHeader @eb:version                                           #12
3. From/To PartyId: well-formed, in the CPA, To is us                  #14, #15, #19, #20
4. Roles: present on business messages, absent on signals             #18
5. Service/Action: CanSend + CanReceive bindings, or a signal action  #17, #21–#24
6. RefToMessageId known (caller's hook)                                 #25
7. TimeToLive not passed                                                #26
8. DuplicateElimination, AckRequested, SyncReply against the sender's channel   #27–#35
9. MessageOrder                                                         #36
10. signal blocks (Acknowledgment, ErrorList, StatusRequest/Response)  Decision
11. Manifest version and references                                     #38–#42
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ggk_ebms.clock import utc
from ggk_ebms.cpa.lookup import (
    ResolvedChannel,
    find_action_binding,
    find_party,
    msh_signal_channel,
    resolve_channel,
)
from ggk_ebms.cpa.model import ActionBinding, Agreement, PartyInfo, PerMessage, SyncReplyMode
from ggk_ebms.ebms.fault import cpa_not_found_fault
from ggk_ebms.ebms.model import EbmsMessage, Party, SignalAction
from ggk_ebms.errors import EbmsError, ErrorCode
from ggk_ebms.ns import ACTOR_NEXT_MSH, ACTOR_TO_PARTY_MSH, EBMS_VERSION, SOAP_ACTOR_NEXT

__all__ = ["InboundContext", "cpa_not_found_fault", "validate_inbound"]

MH: Final = "//Header/MessageHeader"
H: Final = "//Header"

# The catalogue's descriptions (docs/ebms.md catalogue), one spelling each.
INVALID_VALUE: Final = "Invalid value."
WRONG_VALUE: Final = "Wrong value."
VALUE_NOT_FOUND: Final = "Value not found."
INVALID_CPA: Final = "Invalid CPA."
TTL_EXPIRED: Final = "Time to live expired."
NEXT_MSH: Final = "NextMSH not supported."
MESSAGE_ORDER: Final = "MessageOrder not supported."
URI_UNRESOLVABLE: Final = "URI cannot be resolved."
PART_NOT_FOUND: Final = "MIME part not found."

_USABLE_CPA_STATUS: Final = frozenset({"agreed", "signed"})  # CPPA 2.0: "signed" is an agreed CPA, signed
_URI: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
# The signal we answer each kind with decides which OverrideMshActionBinding applies.
_ANSWER: Final = {
    "business": SignalAction.ACKNOWLEDGMENT.value,
    SignalAction.PING.value: SignalAction.PONG.value,
    SignalAction.STATUS_REQUEST.value: SignalAction.STATUS_RESPONSE.value,
}


@dataclass(frozen=True)
class InboundContext:
    """What a valid inbound message resolved to in its CPA.

    ``sender_binding``/``receiver_binding`` are None for signals, which have no Role and travel
    on the parties' MSH channels (Digikoppeling KVS ch. 5; CPPA 2.0, BP ch. 3). ``sender_channel`` is the
    channel the sender used (its CanSend channel, or its MSH signal channel for a signal);
    ``receiver_channel`` ours.
    ``msh_signal_channel`` is the sender's channel for the signal we answer with: where an async
    Acknowledgment/Pong/StatusResponse goes. ``sync_reply``: answer in the HTTP response.
    """

    agreement: Agreement
    our_party: PartyInfo
    their_party: PartyInfo
    sender_binding: ActionBinding | None
    sender_channel: ResolvedChannel
    receiver_binding: ActionBinding | None
    receiver_channel: ResolvedChannel
    msh_signal_channel: ResolvedChannel
    sync_reply: bool


def validate_inbound(
    message: EbmsMessage,
    agreement: Agreement,
    *,
    our_party_ids: Sequence[str],
    now: datetime,
    attachment_ids: Collection[str],
    known_message_ids: Callable[[str], bool] | None = None,
) -> InboundContext:
    """Check ``message`` against ``agreement`` (the CPA its CPAId names) in the order above.

    ``attachment_ids`` are the Content-IDs of the payload parts that came with it;
    ``known_message_ids`` answers whether a RefToMessageId names a message we know (None: not
    checked). Raises ``EbmsError``; raises ``CpaError`` only for a CPA whose channel references
    point nowhere (the CPA lint refuses those at import).
    """
    header = message.header
    now = utc(now)
    _check_agreement(agreement, header.timestamp, now)
    if header.version != EBMS_VERSION:
        raise _error(ErrorCode.INCONSISTENT, f"{MH}/@version", INVALID_VALUE)  # #12
    their_party = _resolve_party(agreement, header.from_party, f"{MH}/From/PartyId")
    our_party = _resolve_party(agreement, header.to_party, f"{MH}/To/PartyId")
    if not any(pid.value in our_party_ids for pid in our_party.party_ids) or our_party is their_party:
        # The To party is in the CPA but is not this endpoint: the message is not for us.
        raise _error(ErrorCode.INCONSISTENT, f"{MH}/To/PartyId", VALUE_NOT_FOUND)
    if header.is_signal:
        sender_binding = receiver_binding = None
        sender_channel, receiver_channel = _signal_channels(message, their_party, our_party)
    else:
        sender_binding, receiver_binding = _business_bindings(message, their_party, our_party)
        sender_channel = resolve_channel(their_party, sender_binding.channel_ids[0])
        receiver_channel = resolve_channel(our_party, receiver_binding.channel_ids[0])
    _check_reference(message, known_message_ids)
    if header.time_to_live is not None and header.time_to_live < now:
        raise _error(ErrorCode.TIME_TO_LIVE_EXPIRED, f"{MH}/MessageData/TimeToLive", TTL_EXPIRED)  # #26
    _check_channel_flags(message, sender_channel)
    if message.message_order:
        # KVS3/BP2 EB011: MessageOrder strongly discouraged;
        # Decision: unsupported (Digikoppeling KVS ch. 3, BP ch. 3).
        raise _error(ErrorCode.NOT_SUPPORTED, f"{H}/MessageOrder", MESSAGE_ORDER)  # #36
    _check_signal_blocks(message)
    _check_manifest(message, attachment_ids)
    return InboundContext(
        agreement=agreement,
        our_party=our_party,
        their_party=their_party,
        sender_binding=sender_binding,
        sender_channel=sender_channel,
        receiver_binding=receiver_binding,
        receiver_channel=receiver_channel,
        msh_signal_channel=msh_signal_channel(their_party, _ANSWER.get(message.kind)),
        sync_reply=_sync_reply(message, sender_channel),
    )


# --- steps -----------------------------------------------------------------------------------------


def _check_agreement(agreement: Agreement, timestamp: datetime, now: datetime) -> None:
    """CPPA 2.0; docs/rules.md receive-side check 2: Status
    agreed and Start ≤ Timestamp ≤ End, else "Invalid CPA."."""
    usable = agreement.status in _USABLE_CPA_STATUS
    in_period = all(agreement.start <= moment <= agreement.end for moment in (timestamp, now))
    if not (usable and in_period):
        raise _error(ErrorCode.INCONSISTENT, f"{MH}/@cpaid", INVALID_CPA)


def _resolve_party(agreement: Agreement, party: Party, location: str) -> PartyInfo:
    """ebMS 2.0 §3.1, KVS ch. 5 PartyId rule and CPPA 2.0; docs/rules.md receive-side check 3 (#14, #15, #19,
    #20).

    KVS5: ``eb:type`` must be present (``urn:osb:oin`` for OINs); an untyped PartyId must be a
    URI (ebMS 2.0 §3.1.1.1), else "Invalid value.". The party is the CPA party holding one of the
    PartyIds with exactly that value and type, else "Value not found.".
    """
    for pid in party.party_ids:
        if pid.type is None and not _URI.fullmatch(pid.value):
            raise _error(ErrorCode.INCONSISTENT, location, INVALID_VALUE)
    for pid in party.party_ids:
        found = find_party(agreement, pid.value, pid.type)
        if found is not None:
            return found
    raise _error(ErrorCode.INCONSISTENT, location, VALUE_NOT_FOUND)


def _business_bindings(
    message: EbmsMessage, their_party: PartyInfo, our_party: PartyInfo
) -> tuple[ActionBinding, ActionBinding]:
    """CPPA 2.0; docs/rules.md receive-side check 4: sender
    CanSend, receiver CanReceive (Service, type, Action, Roles)."""
    header = message.header
    from_role, to_role = header.from_party.role, header.to_party.role
    if from_role is None:
        raise _error(ErrorCode.INCONSISTENT, f"{MH}/From/Role", INVALID_VALUE)  # #18; Role required ebms-core
    if to_role is None:
        raise _error(ErrorCode.INCONSISTENT, f"{MH}/To/Role", INVALID_VALUE)
    service = header.service
    if service.type is None and not _URI.fullmatch(service.value):
        # KVS5/EB006: an untyped Service must be a URI (ebMS 2.0 §3.1.4).
        raise _error(ErrorCode.INCONSISTENT, f"{MH}/Service", INVALID_VALUE)
    sender = find_action_binding(
        their_party,
        direction="send",
        role=from_role,
        service=service.value,
        service_type=service.type,
        action=header.action,
    )
    receiver = find_action_binding(
        our_party,
        direction="receive",
        role=to_role,
        service=service.value,
        service_type=service.type,
        action=header.action,
    )
    if sender is None or receiver is None or not sender.channel_ids or not receiver.channel_ids:
        raise _error(ErrorCode.VALUE_NOT_RECOGNIZED, f"{MH}/Action", VALUE_NOT_FOUND)  # #17, #21–#24
    return sender, receiver


def _signal_channels(
    message: EbmsMessage, their_party: PartyInfo, our_party: PartyInfo
) -> tuple[ResolvedChannel, ResolvedChannel]:
    """Signals: no Role (KVS5), a known signal action, the parties' MSH channels (CPPA 2.0, BP ch. 3)."""
    header = message.header
    if message.kind == "business":  # the signal service with an action it does not have
        raise _error(ErrorCode.VALUE_NOT_RECOGNIZED, f"{MH}/Action", VALUE_NOT_FOUND)
    if header.from_party.role is not None:
        raise _error(ErrorCode.INCONSISTENT, f"{MH}/From/Role", INVALID_VALUE)
    if header.to_party.role is not None:
        raise _error(ErrorCode.INCONSISTENT, f"{MH}/To/Role", INVALID_VALUE)
    return msh_signal_channel(their_party, header.action), msh_signal_channel(our_party, header.action)


def _check_reference(message: EbmsMessage, known_message_ids: Callable[[str], bool] | None) -> None:
    """#25: RefToMessageId must name a message we know (ebms-core; EB016). Signals about a message
    (Acknowledgment, MessageError, Pong, StatusResponse) must carry one (ebMS 2.0 §3.1.6.3)."""
    ref = message.header.ref_to_message_id
    location = f"{MH}/MessageData/RefToMessageId"
    if ref is None:
        if message.kind in _ANSWERS_TO_A_MESSAGE:
            raise _error(ErrorCode.INCONSISTENT, location, INVALID_VALUE)
        return
    if known_message_ids is not None and not known_message_ids(ref):
        raise _error(ErrorCode.VALUE_NOT_RECOGNIZED, location, VALUE_NOT_FOUND)


_ANSWERS_TO_A_MESSAGE: Final = frozenset(
    {SignalAction.ACKNOWLEDGMENT, SignalAction.MESSAGE_ERROR, SignalAction.PONG, SignalAction.STATUS_RESPONSE}
)


def _check_channel_flags(message: EbmsMessage, channel: ResolvedChannel) -> None:
    """CPPA 2.0; docs/rules.md receive-side check 5 (#27–#35): the flags must match the sender's channel.

    Business messages must carry exactly what the channel demands: DuplicateElimination and
    AckRequested per ``always``/``never`` (``perMessage`` allows both), SyncReply iff the channel's
    syncReplyMode is not ``none`` (ebms-core treats every non-none mode as synchronous; ebMS 2.0 §4.3, BP
    EB015). Signals never request Acks or carry DuplicateElimination (Digikoppeling KVS ch. 5), so for them
    only the blocks that are present are judged.
    """
    header = message.header
    characteristics = channel.channel.characteristics
    business = not message.is_signal
    if business and not _matches(characteristics.duplicate_elimination, header.duplicate_elimination):
        raise _error(ErrorCode.INCONSISTENT, f"{MH}/DuplicateElimination", WRONG_VALUE)  # #27
    ack = message.ack_requested
    if business and not _matches(characteristics.ack_requested, ack is not None):
        raise _error(ErrorCode.INCONSISTENT, f"{H}/AckRequested", WRONG_VALUE)  # #28
    if ack is not None:
        if ack.version != EBMS_VERSION:
            raise _error(ErrorCode.INCONSISTENT, f"{H}/AckRequested/@version", INVALID_VALUE)  # #29
        if ack.actor == ACTOR_NEXT_MSH:
            # KVS3: end-to-end reliability only, no nextMSH.
            raise _error(ErrorCode.NOT_SUPPORTED, f"{H}/AckRequested/@actor", NEXT_MSH)  # #30
        if ack.actor != ACTOR_TO_PARTY_MSH:
            raise _error(ErrorCode.INCONSISTENT, f"{H}/AckRequested/@actor", INVALID_VALUE)  # #31
        if not _matches(characteristics.ack_signature_requested, ack.signed):
            raise _error(ErrorCode.INCONSISTENT, f"{H}/AckRequested/@signed", WRONG_VALUE)  # #32
    sync = message.sync_reply
    expects_sync = characteristics.sync_reply_mode != SyncReplyMode.NONE
    if business and expects_sync != (sync is not None):
        raise _error(ErrorCode.INCONSISTENT, f"{H}/SyncReply", WRONG_VALUE)  # #33
    if sync is not None:
        if sync.version != EBMS_VERSION:
            raise _error(ErrorCode.INCONSISTENT, f"{H}/SyncReply/@version", INVALID_VALUE)  # #34
        if sync.actor != SOAP_ACTOR_NEXT:
            raise _error(ErrorCode.INCONSISTENT, f"{H}/SyncReply/@actor", WRONG_VALUE)  # #35


def _matches(mode: PerMessage, present: bool) -> bool:
    if mode == PerMessage.ALWAYS:
        return present
    if mode == PerMessage.NEVER:
        return not present
    return True


def _check_signal_blocks(message: EbmsMessage) -> None:
    """Decision: each signal carries its own block, in version 2.0 (ebMS 2.0 §6.3.2, §4.2.3, §7).

    An Acknowledgment for nextMSH is NotSupported like an AckRequested for it (ebMS 2.0 §6.3).
    """
    kind = message.kind
    ack = message.acknowledgment
    if kind == SignalAction.ACKNOWLEDGMENT:
        if ack is None:
            raise _error(ErrorCode.INCONSISTENT, f"{H}/Acknowledgment", VALUE_NOT_FOUND)
        if ack.ref_to_message_id != message.header.ref_to_message_id:
            raise _error(ErrorCode.INCONSISTENT, f"{H}/Acknowledgment/RefToMessageId", INVALID_VALUE)
    if ack is not None:
        if ack.version != EBMS_VERSION:
            raise _error(ErrorCode.INCONSISTENT, f"{H}/Acknowledgment/@version", INVALID_VALUE)
        if ack.actor == ACTOR_NEXT_MSH:
            raise _error(ErrorCode.NOT_SUPPORTED, f"{H}/Acknowledgment/@actor", NEXT_MSH)
        if ack.actor not in (None, ACTOR_TO_PARTY_MSH):
            raise _error(ErrorCode.INCONSISTENT, f"{H}/Acknowledgment/@actor", INVALID_VALUE)
    errors = message.error_list
    if kind == SignalAction.MESSAGE_ERROR and errors is None:
        raise _error(ErrorCode.INCONSISTENT, f"{H}/ErrorList", VALUE_NOT_FOUND)
    if errors is not None and errors.version != EBMS_VERSION:
        raise _error(ErrorCode.INCONSISTENT, f"{H}/ErrorList/@version", INVALID_VALUE)
    request = message.status_request
    if kind == SignalAction.STATUS_REQUEST and request is None:
        raise _error(ErrorCode.INCONSISTENT, "//Body/StatusRequest", VALUE_NOT_FOUND)
    if request is not None and request.version != EBMS_VERSION:
        raise _error(ErrorCode.INCONSISTENT, "//Body/StatusRequest/@version", INVALID_VALUE)
    response = message.status_response
    if kind == SignalAction.STATUS_RESPONSE and response is None:
        raise _error(ErrorCode.INCONSISTENT, "//Body/StatusResponse", VALUE_NOT_FOUND)
    if response is not None and response.version != EBMS_VERSION:
        raise _error(ErrorCode.INCONSISTENT, "//Body/StatusResponse/@version", INVALID_VALUE)


def _check_manifest(message: EbmsMessage, attachment_ids: Collection[str]) -> None:
    """#38–#42: Manifest version 2.0; every Reference a ``cid:`` of a part that came with it (KVS5).

    No Manifest is valid (#37). An unresolvable href is reported at the Reference (#39); a
    ``cid:`` without its part at the cid itself (#40, #42).
    """
    manifest = message.manifest
    if manifest is None:
        return
    if manifest.version != EBMS_VERSION:
        raise _error(ErrorCode.INCONSISTENT, "//Body/Manifest/@version", INVALID_VALUE)  # #38
    for reference in manifest.references:
        content_id = reference.content_id
        if content_id is None:
            location = f"//Body/Manifest/Reference[@href={_xpath_literal(reference.href)}]"
            raise _error(ErrorCode.MIME_PROBLEM, location, URI_UNRESOLVABLE)  # #39
        if content_id not in attachment_ids:
            raise _error(ErrorCode.MIME_PROBLEM, reference.href, PART_NOT_FOUND)  # #40, #42


def _sync_reply(message: EbmsMessage, sender_channel: ResolvedChannel) -> bool:
    """Signals go back in the HTTP response when asked (SyncReply; validated against the channel
    for business messages) or, for Ping/StatusRequest, when the sender's MSH channel is
    synchronous (ebms-core PongProcessor; ebMS 2.0 §4.3, BP EB015; ebMS 2.0 §7-§8)."""
    if message.sync_reply is not None:
        return True
    if message.is_signal:
        return sender_channel.channel.characteristics.sync_reply_mode != SyncReplyMode.NONE
    return False


def _xpath_literal(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    pieces = ', "\'", '.join(f"'{piece}'" for piece in value.split("'"))
    return f"concat({pieces})"


def _error(code: ErrorCode, location: str, description: str) -> EbmsError:
    return EbmsError(code, location, description)
