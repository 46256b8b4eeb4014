"""The message lifecycle: every status a message can have, and every way it may change.

Pure: no I/O, no clock. Two layers, each with its own transition table:

- the ebMS layer (column ``message.status``): what the MSH knows about a message. Inbound:
  received, duplicate, refused with its ebMS error; outbound: created, sending, delivered,
  delivery failed, expired; and the MSH signals we send ourselves.
- the business layer (column ``message.business_status``) for StUF-GGk traffic: outbound Di01/Du01
  sent, accepted (Bv03), refused (Fo01/Fo03 with its code), answered (a retour whose
  crossRefnummer names it); inbound received, delivered to the application, held, refused (with
  the Fo01 we sent).

A change is asked for as an *event*; ``decide`` looks it up for the message's current status and
returns the ``Step`` to take, or raises ``IllegalTransition``. Each table entry names the rule it
implements. The store applies a step with a guarded update (``store.lifecycle``): the status is
written only if it is still the one the decision was made on, and every step appends an event to
the message's history. docs/rules.md explains the rules in prose.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ggk_ebms.ebms.model import MessageStatus
from ggk_ebms.errors import StateTransitionError


class Status(StrEnum):
    """The ebMS-layer status of a stored message (the values are the stored text)."""

    # Received messages; the first three are also ebMS 2.0 §7.3.2 messageStatus values.
    RECEIVED = "Received"
    PROCESSED = "Processed"
    FORWARDED = "Forwarded"
    FAILED = "Failed"  # refused with a MessageError, or (business) not deliverable
    # Business messages we send (ebMS 2.0 §6.5; Digikoppeling Koppelvlakstandaard ebMS2 status).
    CREATED = "Created"
    SENDING = "Sending"
    DELIVERED = "Delivered"
    DELIVERY_FAILED = "DeliveryFailed"
    EXPIRED = "Expired"
    # MSH signals we send (Acknowledgment, MessageError, Pong, StatusResponse): Created, Sent, Failed.
    SENT = "Sent"


class Business(StrEnum):
    """The business-layer status of a StUF-GGk message (``message.business_status``)."""

    SENT = "sent"  # outbound: queued towards the partner
    ACCEPTED = "accepted"  # outbound: a Bv03 confirmed it (StUF 03.01 Bv03)
    REFUSED = "refused"  # outbound: a Fo01/Fo03 names it; inbound: we sent a Fo01 about it
    ANSWERED = "answered"  # outbound: a retour Du01 with crossRefnummer = its referentienummer
    RECEIVED = "received"  # inbound: the envelope was read, stuurgegevens known
    DELIVERED = "delivered"  # inbound: handed to the domain application (route target)
    HELD = "held"  # inbound: kept for an operator (quarantine, no route)


class Flow(StrEnum):
    """Which table applies: decided by direction and kind, see ``flow_of``."""

    INBOUND = "inbound"  # anything we received (business or signal), ebMS layer
    OUTBOUND = "outbound"  # a business message we send, ebMS layer
    SIGNAL = "signal"  # an MSH signal we send, ebMS layer
    BUSINESS_OUT = "business-out"  # a StUF message we send, business layer
    BUSINESS_IN = "business-in"  # a StUF message we received, business layer


class Event(StrEnum):
    # inbound, ebMS layer
    RECEIVED = "received"
    REFUSED = "refused"
    SIGNAL_HANDLED = "signal-handled"
    DUPLICATE = "duplicate"
    DELIVERY_RETRY = "delivery-retry"
    FORWARDED = "forwarded"
    KEPT_FOR_PICKUP = "kept-for-pickup"
    PICKED_UP = "picked-up"
    SETTLED = "settled"  # duplicate, ignored, or a Fo01 about our message: nothing to deliver
    NOT_DELIVERED = "not-delivered"
    OPERATOR_RETRY = "operator-retry"
    # outbound, ebMS layer
    SUBMITTED = "submitted"
    ATTEMPT_STARTED = "attempt-started"
    ACCEPTED = "accepted"  # Acknowledgment (in the response or asynchronous), or BE 2xx
    AWAITING_ACK = "awaiting-ack"
    RETRY_SCHEDULED = "retry-scheduled"
    SEND_FAILED = "send-failed"
    MESSAGE_ERROR = "message-error"
    EXPIRED = "expired"
    OPERATOR_RESEND = "operator-resend"
    # our signals
    SIGNAL_QUEUED = "signal-queued"
    SIGNAL_SENT = "signal-sent"
    SIGNAL_GIVEN_UP = "signal-given-up"
    SIGNAL_RESEND = "signal-resend"
    # business layer
    STUF_SENT = "stuf-sent"
    STUF_ACCEPTED = "stuf-accepted"
    STUF_REFUSED = "stuf-refused"
    STUF_ANSWERED = "stuf-answered"
    STUF_RECEIVED = "stuf-received"
    STUF_DELIVERED = "stuf-delivered"
    STUF_HELD = "stuf-held"
    STUF_RETRY = "stuf-retry"


class IllegalTransition(StateTransitionError):
    """An event that the table does not allow for the current status: a bug, never input."""


@dataclass(frozen=True)
class Rule:
    to: str
    cite: str  # the standard (or docs/rules.md section) this transition implements
    ignored: bool = False  # the event is recorded in the history but the status stays


@dataclass(frozen=True)
class Step:
    """A decided change: from ``source`` to ``rule.to`` because of ``event``."""

    flow: Flow
    source: str | None
    event: Event
    rule: Rule

    @property
    def target(self) -> str:
        return self.rule.to

    @property
    def writes(self) -> bool:
        return not self.rule.ignored


# --- final states: the one definition ---------------------------------------------------------------

FINAL: Final[dict[Flow, frozenset[str]]] = {
    # Nothing more is done by the MSH (ebMS 2.0 §7.3.2: Processed/Forwarded; Failed: refused).
    Flow.INBOUND: frozenset({Status.PROCESSED, Status.FORWARDED, Status.FAILED}),
    # ebMS 2.0 §6.5.1/§6.5.7: acknowledged, given up, or past TimeToLive.
    Flow.OUTBOUND: frozenset({Status.DELIVERED, Status.DELIVERY_FAILED, Status.EXPIRED}),
    Flow.SIGNAL: frozenset({Status.SENT, Status.FAILED}),
    # StUF-GGk: a refusal or a retour ends a heen message's story; "accepted" still awaits a retour.
    Flow.BUSINESS_OUT: frozenset({Business.REFUSED, Business.ANSWERED}),
    Flow.BUSINESS_IN: frozenset({Business.DELIVERED, Business.REFUSED}),
}
FINAL_SEND: Final = FINAL[Flow.OUTBOUND]
FINAL_RECEIVE: Final = FINAL[Flow.INBOUND]
FINAL_SIGNAL: Final = FINAL[Flow.SIGNAL]
# What an operator may ask to try again (docs/rules.md "Operator retry").
RETRIABLE_OUTBOUND: Final = frozenset({Status.DELIVERY_FAILED, Status.EXPIRED, Status.FAILED})
RETRIABLE_INBOUND: Final = frozenset({Status.FAILED})

_S, _B, _E, _F = Status, Business, Event, Flow

_EBMS_RM = "ebMS 2.0 §6.5.1 (sending behaviour)"
_EBMS_ACK = "ebMS 2.0 §6.3.2 / §6.5.3 (Acknowledgment)"
_EBMS_DUP = "ebMS 2.0 §6.5.6 (duplicate message handling)"
_EBMS_FAIL = "ebMS 2.0 §6.5.7 (failed message delivery)"
_EBMS_TTL = "ebMS 2.0 §6.4.5 (TimeToLive)"
_EBMS_ERR = "ebMS 2.0 §4.2 (error handling: ErrorList)"
_DK_RETRY = "Digikoppeling Koppelvlakstandaard ebMS2 (retries, HTTP status handling)"
_DK_BE = "Digikoppeling Koppelvlakstandaard ebMS2 (best effort: one attempt, 2xx accepted)"
_OPS = "docs/rules.md (operator retry)"
_GGK = "StUF-GGk / StUF 03.01"

_TABLE: dict[tuple[Flow, str | None, Event], Rule] = {
    # -- inbound, ebMS layer ------------------------------------------------------------------
    (_F.INBOUND, None, _E.RECEIVED): Rule(_S.RECEIVED, "ebMS 2.0 §6.5.2 (stored before acknowledged)"),
    (_F.INBOUND, None, _E.REFUSED): Rule(_S.FAILED, _EBMS_ERR + "; MessageError returned"),
    (_F.INBOUND, None, _E.SIGNAL_HANDLED): Rule(_S.PROCESSED, "ebMS 2.0 §6.5.3, §7, §8 (MSH signals)"),
    (_F.INBOUND, _S.RECEIVED, _E.DELIVERY_RETRY): Rule(_S.RECEIVED, "docs/rules.md (delivery retries)"),
    (_F.INBOUND, _S.RECEIVED, _E.FORWARDED): Rule(_S.FORWARDED, "ebMS 2.0 §7.3.2 (Forwarded)"),
    (_F.INBOUND, _S.RECEIVED, _E.KEPT_FOR_PICKUP): Rule(_S.PROCESSED, "ebMS 2.0 §7.3.2 (Processed)"),
    (_F.INBOUND, _S.RECEIVED, _E.SETTLED): Rule(_S.PROCESSED, "ebMS 2.0 §7.3.2 (Processed)"),
    (_F.INBOUND, _S.RECEIVED, _E.NOT_DELIVERED): Rule(_S.FAILED, "docs/rules.md (parked messages)"),
    (_F.INBOUND, _S.PROCESSED, _E.PICKED_UP): Rule(_S.FORWARDED, "ebMS 2.0 §7.3.2 (Forwarded)"),
    (_F.INBOUND, _S.FAILED, _E.OPERATOR_RETRY): Rule(_S.RECEIVED, _OPS),
    # -- outbound business messages, ebMS layer ----------------------------------------------
    (_F.OUTBOUND, None, _E.SUBMITTED): Rule(_S.CREATED, _EBMS_RM),
    (_F.OUTBOUND, _S.CREATED, _E.ATTEMPT_STARTED): Rule(_S.SENDING, _EBMS_RM),
    (_F.OUTBOUND, _S.CREATED, _E.SEND_FAILED): Rule(_S.DELIVERY_FAILED, _EBMS_FAIL),
    (_F.OUTBOUND, _S.CREATED, _E.EXPIRED): Rule(_S.EXPIRED, _EBMS_TTL),
    # An Acknowledgment for an earlier copy can arrive after an operator queued it again.
    (_F.OUTBOUND, _S.CREATED, _E.ACCEPTED): Rule(_S.DELIVERED, _EBMS_ACK),
    (_F.OUTBOUND, _S.CREATED, _E.MESSAGE_ERROR): Rule(_S.DELIVERY_FAILED, _EBMS_ERR),
    (_F.OUTBOUND, _S.SENDING, _E.ATTEMPT_STARTED): Rule(_S.SENDING, "ebMS 2.0 §6.5.4 (resending)"),
    (_F.OUTBOUND, _S.SENDING, _E.ACCEPTED): Rule(_S.DELIVERED, _EBMS_ACK + "; " + _DK_BE),
    (_F.OUTBOUND, _S.SENDING, _E.AWAITING_ACK): Rule(_S.SENDING, "ebMS 2.0 §6.5.1 (wait for the Ack)"),
    (_F.OUTBOUND, _S.SENDING, _E.RETRY_SCHEDULED): Rule(_S.SENDING, "ebMS 2.0 §6.4.3-6.4.4; " + _DK_RETRY),
    (_F.OUTBOUND, _S.SENDING, _E.SEND_FAILED): Rule(_S.DELIVERY_FAILED, _EBMS_FAIL + "; " + _DK_RETRY),
    (_F.OUTBOUND, _S.SENDING, _E.MESSAGE_ERROR): Rule(_S.DELIVERY_FAILED, _EBMS_ERR),
    (_F.OUTBOUND, _S.SENDING, _E.EXPIRED): Rule(_S.EXPIRED, _EBMS_TTL),
    (_F.OUTBOUND, _S.DELIVERY_FAILED, _E.OPERATOR_RESEND): Rule(_S.CREATED, _OPS),
    (_F.OUTBOUND, _S.EXPIRED, _E.OPERATOR_RESEND): Rule(_S.CREATED, _OPS),
    # -- MSH signals we send ------------------------------------------------------------------
    (_F.SIGNAL, None, _E.SIGNAL_QUEUED): Rule(_S.CREATED, "ebMS 2.0 §6.4.7 (syncReplyMode none)"),
    (_F.SIGNAL, None, _E.SIGNAL_SENT): Rule(_S.SENT, "ebMS 2.0 §6.4.7 (in the HTTP response)"),
    (_F.SIGNAL, _S.CREATED, _E.SIGNAL_SENT): Rule(_S.SENT, "ebMS 2.0 §6.5.3"),
    (_F.SIGNAL, _S.CREATED, _E.SIGNAL_GIVEN_UP): Rule(_S.FAILED, "docs/rules.md (signals are best effort)"),
    (_F.SIGNAL, _S.SENT, _E.SIGNAL_RESEND): Rule(_S.CREATED, "ebMS 2.0 §6.5.5 (resending Acknowledgments)"),
    (_F.SIGNAL, _S.FAILED, _E.SIGNAL_RESEND): Rule(_S.CREATED, "ebMS 2.0 §6.5.5 (resending Acknowledgments)"),
    # -- business layer, StUF messages we send -----------------------------------------------
    (_F.BUSINESS_OUT, None, _E.STUF_SENT): Rule(_B.SENT, _GGK + " (Di01/Du01/Fo01 sent)"),
    (_F.BUSINESS_OUT, _B.SENT, _E.STUF_ACCEPTED): Rule(_B.ACCEPTED, _GGK + " (Bv03)"),
    (_F.BUSINESS_OUT, _B.SENT, _E.STUF_REFUSED): Rule(_B.REFUSED, _GGK + " (Fo01/Fo03, crossRefnummer)"),
    (_F.BUSINESS_OUT, _B.ACCEPTED, _E.STUF_REFUSED): Rule(_B.REFUSED, _GGK + " (Fo01 after a Bv03)"),
    (_F.BUSINESS_OUT, _B.SENT, _E.STUF_ANSWERED): Rule(_B.ANSWERED, _GGK + " (Du01 crossRefnummer)"),
    (_F.BUSINESS_OUT, _B.ACCEPTED, _E.STUF_ANSWERED): Rule(_B.ANSWERED, _GGK + " (Du01 crossRefnummer)"),
    # -- business layer, StUF messages we received -------------------------------------------
    (_F.BUSINESS_IN, None, _E.STUF_RECEIVED): Rule(_B.RECEIVED, _GGK + " (stuurgegevens read)"),
    (_F.BUSINESS_IN, _B.RECEIVED, _E.STUF_DELIVERED): Rule(_B.DELIVERED, "docs/rules.md (routing)"),
    (_F.BUSINESS_IN, _B.RECEIVED, _E.STUF_HELD): Rule(_B.HELD, "docs/rules.md (quarantine and hold)"),
    (_F.BUSINESS_IN, _B.RECEIVED, _E.STUF_REFUSED): Rule(_B.REFUSED, _GGK + " (Fo01 sent to the zender)"),
    (_F.BUSINESS_IN, _B.RECEIVED, _E.STUF_RECEIVED): Rule(_B.RECEIVED, "docs/rules.md (delivery retries)"),
    (_F.BUSINESS_IN, _B.HELD, _E.STUF_RETRY): Rule(_B.RECEIVED, _OPS),
    (_F.BUSINESS_IN, _B.REFUSED, _E.STUF_RETRY): Rule(_B.RECEIVED, _OPS),
    (_F.BUSINESS_IN, _B.DELIVERED, _E.STUF_RETRY): Rule(_B.RECEIVED, _OPS),
}

# A duplicate copy of a received message changes nothing but is part of its history.
for _status in (_S.RECEIVED, _S.PROCESSED, _S.FORWARDED, _S.FAILED):
    _TABLE[(_F.INBOUND, _status, _E.DUPLICATE)] = Rule(_status, _EBMS_DUP, ignored=True)
# A final outbound message stays final: a late or repeated Acknowledgment/MessageError, or the
# outcome of an attempt that raced with an asynchronous Acknowledgment, is recorded and dropped.
for _final in FINAL_SEND:
    for _event in (
        _E.ATTEMPT_STARTED,
        _E.ACCEPTED,
        _E.AWAITING_ACK,
        _E.RETRY_SCHEDULED,
        _E.SEND_FAILED,
        _E.MESSAGE_ERROR,
        _E.EXPIRED,
    ):
        _TABLE[(_F.OUTBOUND, _final, _event)] = Rule(_final, _EBMS_DUP + "; final state kept", ignored=True)
# A late Fo01 or Bv03 about a message whose story has ended is recorded, not applied.
for _ended in FINAL[Flow.BUSINESS_OUT]:
    for _event in (_E.STUF_ACCEPTED, _E.STUF_REFUSED, _E.STUF_ANSWERED):
        _TABLE[(_F.BUSINESS_OUT, _ended, _event)] = Rule(_ended, _GGK + "; final state kept", ignored=True)
_TABLE[(_F.BUSINESS_OUT, _B.ACCEPTED, _E.STUF_ACCEPTED)] = Rule(_B.ACCEPTED, _GGK, ignored=True)

TABLE: Final = dict(_TABLE)
# The step that creates a message of a flow in a status (looked up per stored message).
_CREATION: Final = {
    (flow, rule.to): Step(flow, None, event, rule)
    for (flow, source, event), rule in TABLE.items()
    if source is None
}


def flow_of(direction: str, kind: str) -> Flow:
    """The ebMS-layer table for a message of this direction and kind."""
    if direction == "in":
        return Flow.INBOUND
    return Flow.OUTBOUND if kind == "business" else Flow.SIGNAL


def business_flow(direction: str) -> Flow:
    return Flow.BUSINESS_IN if direction == "in" else Flow.BUSINESS_OUT


def decide(flow: Flow, current: str | None, event: Event) -> Step:
    """The step ``event`` causes for a message of ``flow`` now in ``current`` (None: not stored yet).

    Raises ``IllegalTransition`` when the table has no such entry.
    """
    rule = TABLE.get((flow, current, event))
    if rule is None:
        raise IllegalTransition(f"{flow} message in state {current or '(new)'}: event {event} is not allowed")
    return Step(flow, current, event, rule)


def creation_step(flow: Flow, status: str) -> Step:
    """The step that creates a message of ``flow`` in ``status`` (each such status has one event).

    Raises ``IllegalTransition`` when a new message may not start in ``status``.
    """
    step = _CREATION.get((flow, status))
    if step is None:
        raise IllegalTransition(f"a new {flow} message cannot start in state {status}")
    return step


def is_final(flow: Flow, status: str | None) -> bool:
    return status is not None and status in FINAL[flow]


def allowed_events(flow: Flow, current: str | None) -> frozenset[Event]:
    """Every event the table accepts in ``current`` (for tests and documentation)."""
    return frozenset(event for (f, source, event) in TABLE if f is flow and source == current)


# --- the ebMS 2.0 §7.3.2 StatusResponse view of a received message ----------------------------------

_STATUS_RESPONSE: Final = {
    Status.RECEIVED: MessageStatus.RECEIVED,
    Status.PROCESSED: MessageStatus.PROCESSED,
    Status.FORWARDED: MessageStatus.FORWARDED,
    # Refused with a MessageError: we did receive it, and Received is the honest value the
    # ebMS 2.0 §7.3.2 enumeration allows.
    Status.FAILED: MessageStatus.RECEIVED,
}


def status_response_value(status: str) -> str:
    """The messageStatus a StatusRequest about a received message gets (ebMS 2.0 §7.3.2)."""
    return _STATUS_RESPONSE.get(Status(status), MessageStatus.RECEIVED).value
