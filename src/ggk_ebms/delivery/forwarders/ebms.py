"""ebMS target (hub mode): pass the StUF envelope on, unchanged, under another CPA.

Used where one endpoint serves a samenwerkingsverband and hands each gemeente's traffic to that
gemeente's own MSH (GGk handleiding: routing). The envelope keeps its stuurgegevens, so the final
receiver sees the original zender and referentienummer; the new ebMS message gets its own
MessageId and goes through the outbound worker with the retries of the other CPA.

Idempotent per received message: the ConversationId of the forwarded message is derived from
the received MessageId, and a forward already queued for it is found again instead of repeated.
"""

from __future__ import annotations

from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery.forwarders.base import Delivery, Forwarded
from ggk_ebms.delivery.outbound import STUF_CONTENT_TYPE
from ggk_ebms.errors import CpaError, StoreError, TransportError
from ggk_ebms.pipeline.outbound import submit_message
from ggk_ebms.routing.table import EbmsTarget
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import NewPart
from ggk_ebms.store.stuf import StufRecord, StufStore


def forward_conversation_id(delivery: Delivery) -> str:
    return f"fwd-{delivery.message_id}"[:1024]


class EbmsForwarder:
    def __init__(
        self, target: EbmsTarget, settings: Settings, database: Database, *, ids: IdGenerator, clock: Clock
    ) -> None:
        self.target = target
        self.settings = settings
        self.database = database
        self.ids = ids
        self.clock = clock

    def forward(self, delivery: Delivery) -> Forwarded:
        conversation_id = forward_conversation_id(delivery)
        existing = StufStore(self.database).outbound_in_conversation(self.target.cpa_id, conversation_id)
        if existing is not None:
            return Forwarded(where=f"CPA {self.target.cpa_id} (already queued as message {existing})")
        # Sealing and submitting read the part whole (pipeline/outbound.py): a spooled envelope
        # is read into memory here.
        part = NewPart(f"{self.ids.uuid()}@ggk-ebms", STUF_CONTENT_TYPE, delivery.envelope_bytes())
        try:
            stored = submit_message(
                self.settings,
                self.database,
                cpa_id=self.target.cpa_id,
                service=self.target.service,
                action=self.target.action,
                parts=[part],
                conversation_id=conversation_id,
                ids=self.ids,
                clock=self.clock,
            )
        except CpaError as exc:
            # A CPA that is missing or expired can be imported or renewed: worth retrying.
            raise TransportError(f"cannot queue on CPA {self.target.cpa_id}: {exc}", retryable=True) from None
        except StoreError as exc:
            raise TransportError(f"cannot queue on CPA {self.target.cpa_id}: {exc}", retryable=True) from None
        sg = delivery.stuf.stuurgegevens
        StufStore(self.database, self.clock).record(
            StufRecord(
                message_pk=stored.pk,
                direction="out",
                berichtcode=delivery.stuf.kind.value,
                referentienummer=sg.referentienummer,
                zender=sg.zender.organisatie,
                ontvanger=sg.ontvanger.organisatie,
                gemeentecode=delivery.gemeentecode,
                berichttype=delivery.stuf.functie,
                cross_refnummer=sg.cross_refnummer,
                tijdstip_bericht=sg.tijdstip_bericht,
                bericht_identificatie=delivery.info.identificatie if delivery.info else None,
                payload_sha256=delivery.stuf.payload.sha256 if delivery.stuf.payload else None,
            )
        )
        return Forwarded(where=f"CPA {self.target.cpa_id} as message {stored.pk} ({stored.message_id})")
