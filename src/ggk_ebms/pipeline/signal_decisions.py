"""Inbound decisions about MSH signals, as pure functions with the lookups injected.

In the style of pyas2-lib's ``Message.parse(raw, find_org_cb, find_partner_cb, find_message_cb)``:
the caller passes how to find a stored message; the function reads nothing else and writes
nothing. The pipeline loads, calls the decision and commits what it returns in one transaction;
tests call the decisions directly with dictionaries as their lookups.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ggk_ebms import lifecycle
from ggk_ebms.ebms.model import EbmsMessage
from ggk_ebms.lifecycle import Event, Flow
from ggk_ebms.pipeline.outbound import acknowledgment_matches, references_we_signed
from ggk_ebms.store.messages import SignalEffect, StoredMessage

FindMessage = Callable[[str], StoredMessage | None]


def signal_effect(message: EbmsMessage, *, find_sent: FindMessage) -> SignalEffect | None:
    """What an Acknowledgment or MessageError does to the message we sent, or None.

    ebMS 2.0 §6.5.3: a valid Acknowledgment delivers the message it names; §4.2: a MessageError
    with severity Error fails it. One about a message we do not know, or under another CPA, is
    ignored; so is an Acknowledgment whose echoed references differ from what we signed (the
    retries go on). Late or repeated ones reach the lifecycle, which keeps a final state.
    """
    ref = message.header.ref_to_message_id
    if ref is None or message.kind not in ("Acknowledgment", "MessageError"):
        return None
    sent = find_sent(ref)
    if sent is None or sent.cpa_id != message.header.cpa_id:
        return None
    if message.kind == "Acknowledgment":
        if not lifecycle.is_final(Flow.OUTBOUND, sent.status) and not acknowledgment_matches(
            message, references_we_signed(sent.envelope)
        ):
            return None
        return SignalEffect(sent.pk, Event.ACCEPTED, "Acknowledgment received")
    first = message.error_list.errors[0] if message.error_list and message.error_list.errors else None
    return SignalEffect(
        sent.pk,
        Event.MESSAGE_ERROR,
        (first.description if first else None) or "MessageError received",
        first.code if first else None,
    )


def status_of(ref: str, cpa_id: str, *, find_received: FindMessage) -> tuple[str, datetime | None]:
    """The StatusResponse for a StatusRequest about ``ref`` (ebMS 2.0 §7.1.2, §7.3.2):
    NotRecognized for unknown ids and signals, UnAuthorized for another CPA's message."""
    stored = find_received(ref)
    if stored is None or stored.kind != "business":
        return "NotRecognized", None
    if stored.cpa_id != cpa_id:
        return "UnAuthorized", None
    return lifecycle.status_response_value(stored.status), stored.timestamp
