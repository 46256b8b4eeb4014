"""Mailbox target: keep the message in the database until a domain application fetches it.

The message stays Processed (not Forwarded) until ``ggk-ebms mailbox fetch`` marks the item
gelezen (GGk handleiding: Ophalen/berichtenlog): only then has it been handed over.
"""

from __future__ import annotations

from ggk_ebms.delivery.forwarders.base import Delivery, Forwarded
from ggk_ebms.errors import StoreError, TransportError
from ggk_ebms.store.mailbox import Mailbox


class MailboxForwarder:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    def forward(self, delivery: Delivery) -> Forwarded:
        try:
            pk = self.mailbox.put(
                message_pk=delivery.message_pk,
                route_name=delivery.route.name,
                gemeentecode=delivery.gemeentecode,
                berichttype=delivery.berichttype,
                referentienummer=delivery.referentienummer,
                zender=delivery.stuf.stuurgegevens.zender.organisatie,
                filename=delivery.filename,
                payload=delivery.payload,
                envelope=delivery.envelope_bytes(),
            )
        except StoreError as exc:
            raise TransportError(f"cannot store in the mailbox: {exc}", retryable=True) from None
        return Forwarded(where=f"mailbox item {pk}", picked_up_later=True)
