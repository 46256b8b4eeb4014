"""Our message states seen through ebms-core's REST v19 vocabulary (docs/api.md, "States").

ebms-core knows receiving states UNAUTHORIZED, NOT_RECOGNIZED, RECEIVED, PROCESSED, FORWARDED,
FAILED and sending states CREATED, DELIVERY_FAILED, DELIVERED, EXPIRED, and the event types
RECEIVED, DELIVERED, FAILED, EXPIRED. We never store a message we refuse (it gets an ebMS
MessageError, ebMS 2.0 §4.2.3), so UNAUTHORIZED and NOT_RECOGNIZED never occur here.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class EbmsCoreStatus(StrEnum):
    UNAUTHORIZED = "UNAUTHORIZED"
    NOT_RECOGNIZED = "NOT_RECOGNIZED"
    RECEIVED = "RECEIVED"
    PROCESSED = "PROCESSED"
    FORWARDED = "FORWARDED"
    FAILED = "FAILED"
    CREATED = "CREATED"
    DELIVERY_FAILED = "DELIVERY_FAILED"
    DELIVERED = "DELIVERED"
    EXPIRED = "EXPIRED"


class EventType(StrEnum):
    RECEIVED = "RECEIVED"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


# Our receive-side states: Processed means our own pipeline handed it on (to a route or the
# mailbox), which to an API client is still a message it has not processed itself.
_RECEIVED: Final[Mapping[str, EbmsCoreStatus]] = {
    "Received": EbmsCoreStatus.RECEIVED,
    "Processed": EbmsCoreStatus.RECEIVED,
    "Forwarded": EbmsCoreStatus.FORWARDED,
    "Failed": EbmsCoreStatus.FAILED,
}
_SENT: Final[Mapping[str, EbmsCoreStatus]] = {
    "Created": EbmsCoreStatus.CREATED,
    "Sending": EbmsCoreStatus.CREATED,
    "Delivered": EbmsCoreStatus.DELIVERED,
    "DeliveryFailed": EbmsCoreStatus.DELIVERY_FAILED,
    "Expired": EbmsCoreStatus.EXPIRED,
}
# The event each final state produces (ebms-core sends one event per message).
EVENT_STATES: Final[Mapping[EventType, tuple[str, tuple[str, ...]]]] = {
    EventType.RECEIVED: ("in", ("Received", "Processed", "Forwarded")),
    EventType.DELIVERED: ("out", ("Delivered",)),
    EventType.FAILED: ("out", ("DeliveryFailed",)),
    EventType.EXPIRED: ("out", ("Expired",)),
}
# States in which a received message is not offered as unprocessed.
NOT_OFFERED_RECEIVED: Final = ("Failed",)


def ebms_core_status(direction: str, status: str, *, processed_mark: bool = False) -> EbmsCoreStatus:
    """ebms-core's name for our ``status``; a received message a client marked is PROCESSED.

    A state this table does not know (a newer lifecycle) counts as not yet final on its side:
    RECEIVED for a received message, CREATED for a sent one.
    """
    if direction == "in":
        if processed_mark and status != "Failed":
            return EbmsCoreStatus.PROCESSED
        return _RECEIVED.get(status, EbmsCoreStatus.RECEIVED)
    return _SENT.get(status, EbmsCoreStatus.CREATED)


def event_type(direction: str, status: str) -> EventType | None:
    for kind, (event_direction, statuses) in EVENT_STATES.items():
        if direction == event_direction and status in statuses:
            return kind
    return None
