"""Retry decisions for outbound messages: the retry table and the retry timing.

Pure: every function takes the facts (status, attempt number, CPA values, ``now``) and returns a
decision; nothing here reads the clock, sleeps or touches the database. The outbound worker
composes them:

1. before the first attempt: ``time_to_live(timestamp, retries, retry_interval)`` for RM messages;
2. per attempt: POST, then ``classify_response`` (and, for a
   2xx with an envelope, ``classify_signal``) or ``classify_error`` for a ``TransportError``;
   ``record_attempt`` keeps time, HTTP status and error text of every attempt (docs/sending.md);
3. on ``RETRY``: ``transport_retry_at`` first (a quick retry inside the current RetryInterval for
   connection-level failures), else ``next_attempt``; when both say None, ``when_retries_end``
   says whether to wait for TimeToLive (then Expired) or fail now.

The status a message moves to is the lifecycle's business (ggk_ebms.lifecycle, docs/rules.md);
these functions only say when to try again. Sources: ebMS 2.0 §6.4.3-6.4.5 (Retries,
RetryInterval, TimeToLive) and the Digikoppeling Koppelvlakstandaard ebMS2 HTTP status table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from ggk_ebms.errors import TransportError
from ggk_ebms.lifecycle import Event
from ggk_ebms.transport.result import HttpResult, Layer


class ResponseClass(StrEnum):
    """What one attempt's outcome means for the message (KVS ch. 5 HTTP status handling "Class"/"Effect")."""

    DELIVERED = "delivered"  # BE 2xx, or an Acknowledgment in the response
    AWAIT_ACK = "await-ack"  # RM 2xx without a body: the Acknowledgment comes asynchronously
    INSPECT = "inspect"  # 2xx with an envelope: parse it and ask classify_signal
    RETRY = "retry"  # recoverable: try again per the CPA
    FAILED = "failed"  # fatal: DeliveryFailed at once, even for RM


class SignalKind(StrEnum):
    """What a 2xx response envelope turned out to hold, as the caller's ebMS parser saw it."""

    ACKNOWLEDGMENT = "Acknowledgment"
    MESSAGE_ERROR = "MessageError"  # an ErrorList with highestSeverity Error; warnings only: OTHER
    OTHER = "other"  # Pong, StatusResponse, a SOAP Fault in a 200, anything without an Ack


@dataclass(frozen=True)
class RetryPolicy:
    """The configurable parts of the retry table; defaults follow KVS ch. 5 and ebms-core."""

    # ebms-core http.errors.client.recoverable: 4xx is fatal (KVS5 "MUST be errors") except these.
    recoverable_client_statuses: frozenset[int] = frozenset({408, 429})
    # ebms-core http.errors.server.unrecoverable: 5xx is recoverable (KVS5: 503 SHOULD be) except these.
    unrecoverable_server_statuses: frozenset[int] = frozenset({501, 505, 510})
    # Decision: quick retries after a connection-level failure, inside one RetryInterval (KVS5
    # "transport retries must fit inside one RetryInterval"; ebMS 2.0 §6.4, BP ch. 3), so a blip of a few
    # seconds does not cost a whole RetryInterval (PT3H with the BP defaults).
    transport_backoff: tuple[timedelta, ...] = (
        timedelta(seconds=15),
        timedelta(minutes=1),
        timedelta(minutes=5),
    )
    # Decision: a CPA RetryInterval below this is raised to it, so a PT0S in a CPA cannot make us
    # hammer a partner that is down.
    minimum_retry_interval: timedelta = field(default=timedelta(seconds=30))

    def __post_init__(self) -> None:
        if any(not 400 <= status <= 499 for status in self.recoverable_client_statuses):
            raise ValueError("recoverable_client_statuses must be 4xx statuses")
        if any(not 500 <= status <= 599 for status in self.unrecoverable_server_statuses):
            raise ValueError("unrecoverable_server_statuses must be 5xx statuses")
        if any(delay <= timedelta(0) for delay in self.transport_backoff):
            raise ValueError("transport_backoff delays must be positive")
        if self.minimum_retry_interval < timedelta(0):
            raise ValueError("minimum_retry_interval must not be negative")


DEFAULT_POLICY: Final = RetryPolicy()

# Connection-level failures that a quick retry can cure. Timeouts only for RM: a BE request that
# timed out may have been delivered, and BE has no duplicate elimination to absorb a second copy.
_QUICK_RETRY_LAYERS: Final = frozenset({Layer.DNS, Layer.CONNECT})
_QUICK_RETRY_LAYERS_RELIABLE: Final = _QUICK_RETRY_LAYERS | {Layer.TIMEOUT}


def classify_response(
    status: int,
    *,
    reliable: bool,
    body_is_envelope: bool,
    sync_reply: bool = False,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> ResponseClass:
    """Apply the retry table (KVS ch. 5 HTTP status handling) to an HTTP status.

    ``reliable``: an osb-rm* profile; ``sync_reply``: the message asked for SyncReply
    (mshSignalsOnly, EB015), so the Acknowledgment must be in this response.
    """
    if 200 <= status <= 299:
        if body_is_envelope:
            return ResponseClass.INSPECT
        if reliable and sync_reply:
            # KVS ch. 5 HTTP status handling: RM + SyncReply, 2xx without Ack -> retry
            return ResponseClass.RETRY
        return ResponseClass.AWAIT_ACK if reliable else ResponseClass.DELIVERED
    if 400 <= status <= 499:
        return ResponseClass.RETRY if status in policy.recoverable_client_statuses else ResponseClass.FAILED
    if 500 <= status <= 599:
        return ResponseClass.FAILED if status in policy.unrecoverable_server_statuses else ResponseClass.RETRY
    # 1xx and 3xx (we never follow redirects) MUST be errors (KVS5); so is anything outside HTTP.
    return ResponseClass.FAILED


def classify_signal(signal: SignalKind, *, reliable: bool, sync_reply: bool = False) -> ResponseClass:
    """Second step for a 2xx with an envelope (KVS ch. 5 HTTP status handling "200 + envelope")."""
    if signal is SignalKind.ACKNOWLEDGMENT:
        return ResponseClass.DELIVERED
    if signal is SignalKind.MESSAGE_ERROR:
        return ResponseClass.FAILED  # ebMS 2.0 §4.2: a MessageError about ours -> DeliveryFailed
    if not reliable:
        return ResponseClass.DELIVERED
    return ResponseClass.RETRY if sync_reply else ResponseClass.AWAIT_ACK


def classify_error(error: TransportError) -> ResponseClass:
    """A transport failure: retry unless the client said it cannot help
    (KVS ch. 5 HTTP status handling; our choice in docs/rules.md)."""
    return ResponseClass.RETRY if error.retryable else ResponseClass.FAILED


def time_to_live(timestamp: datetime, retries: int, retry_interval: timedelta) -> datetime:
    """``Timestamp + RetryInterval × (Retries + 1)`` (ebMS
    2.0 §6.4, BP ch. 3 ebms-core): BP defaults give +27 h."""
    if retries < 0:
        raise ValueError("retries must not be negative")
    return timestamp + retry_interval * (retries + 1)


def next_attempt(
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    attempt: int,
    retries: int,
    retry_interval: timedelta,
    time_to_live: datetime | None,
    now: datetime,
) -> datetime | None:
    """When to send again after attempt number ``attempt`` (1-based) failed recoverably at ``now``.

    ebms-core (ebMS 2.0 §6.4, BP ch. 3): send at t0; while retries made < Retries, retry at now +
    RetryInterval. None means no more sending: Retries used up, or the next try would reach the partner at or
    after TimeToLive, where it would only earn a TimeToLiveExpired error. ``attempt`` counts ebMS
    attempts (one per RetryInterval), not the quick transport retries inside one.
    """
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    if retries < 0:
        raise ValueError("retries must not be negative")
    if time_to_live is not None and now >= time_to_live:
        return None
    if attempt - 1 >= retries:
        return None
    at = now + max(retry_interval, policy.minimum_retry_interval)
    if time_to_live is not None and at >= time_to_live:
        return None
    return at


def transport_retry_at(
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    layer: str | None,
    reliable: bool,
    failures_in_slot: int,
    slot_started: datetime,
    retry_interval: timedelta | None,
    time_to_live: datetime | None,
    now: datetime,
) -> datetime | None:
    """A quick retry after a connection-level failure, or None to fall back to ``next_attempt``.

    ``failures_in_slot``: transport failures since the current ebMS attempt began at
    ``slot_started``, this one included. The quick retry must land inside that attempt's
    RetryInterval (KVS5) and before TimeToLive; BE (``retry_interval`` None) gets the backoff
    steps only, and only for failures where nothing reached the partner.
    """
    allowed = _QUICK_RETRY_LAYERS_RELIABLE if reliable else _QUICK_RETRY_LAYERS
    if layer not in allowed or not 1 <= failures_in_slot <= len(policy.transport_backoff):
        return None
    at = now + policy.transport_backoff[failures_in_slot - 1]
    if retry_interval is not None and at >= slot_started + retry_interval:
        return None
    if time_to_live is not None and at >= time_to_live:
        return None
    return at


def when_retries_end(*, time_to_live: datetime | None, now: datetime) -> tuple[Event, datetime]:
    """What to do when ``next_attempt`` says None: the event and when it becomes due.

    ebms-core (ebMS 2.0 §6.4, BP ch. 3) waits for TimeToLive before marking Expired, since an Acknowledgment
    for an earlier attempt can still arrive. A message without TimeToLive (BE: one attempt) fails now.
    """
    if time_to_live is None:
        return Event.SEND_FAILED, now
    return Event.EXPIRED, max(time_to_live, now)


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt as it is kept in the message log: when, HTTP status, where and why it failed.

    ``error`` is our own text (hosts, ports, TLS reasons, statuses); response bodies are never
    copied into it, so no payload or personal data ends up in the log.
    """

    number: int
    at: datetime
    http_status: int | None
    layer: str | None
    error: str | None
    elapsed: float | None


def record_attempt(number: int, at: datetime, outcome: HttpResult | TransportError) -> AttemptRecord:
    """The record of attempt ``number`` that started at ``at``."""
    if isinstance(outcome, TransportError):
        return AttemptRecord(number, at, outcome.http_status, outcome.layer, str(outcome), None)
    error = None if 200 <= outcome.status <= 299 else f"HTTP {outcome.status}"
    layer = None if error is None else Layer.HTTP.value
    return AttemptRecord(number, at, outcome.status, layer, error, outcome.elapsed)
