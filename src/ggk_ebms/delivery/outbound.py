"""Queue a StUF message on the ebMS outbound path and remember its stuurgegevens.

Fo01 replies, hub forwarding and ``submit`` all end here: the ebMS service and action come from
the CPA (our CanSend binding whose action names the StUF kind: the dev and RINIS CPAs use
``envelopHeenbericht-ggk_Di01``, ``envelopRetourbericht-ggk_Du01`` and ``Fo01Bericht``; the RINIS CPA
names the service and action to use, docs/stuf-routing.md), the message goes out through
``pipeline.outbound.submit_message``, and its referentienummer is stored so a Du01 or Fo01 that
answers it can be correlated (docs/stuf-routing.md inbound checks 9 and 11).
"""

from __future__ import annotations

from typing import Final

from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.model import ActionBinding, Agreement
from ggk_ebms.errors import CpaError
from ggk_ebms.pipeline.outbound import load_agreement, submit_message
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import NewPart, StoredMessage
from ggk_ebms.store.stuf import StufRecord
from ggk_ebms.stuf.model import MessageKind, StufMessage

STUF_CONTENT_TYPE: Final = "application/xml"
# The part of the CPA action name that tells which StUF kind it carries.
_ACTION_MARK: Final = {MessageKind.DI01: "Di01", MessageKind.DU01: "Du01", MessageKind.FO01: "Fo01"}


def stuf_binding(agreement: Agreement, party_ids: list[str], kind: MessageKind) -> ActionBinding:
    """Our CanSend binding for a StUF ``kind`` under ``agreement``, or CpaError naming the CPA."""
    ours = lookup.own_party(agreement, party_ids)
    mark = _ACTION_MARK.get(kind)
    candidates = [b for b in ours.bindings if b.direction == "send" and mark is not None and mark in b.action]
    if not candidates:
        raise CpaError(f"CPA {agreement.cpa_id!r} has no action for a StUF {kind.value} that we may send")
    return candidates[0]


def queue_stuf(
    settings: Settings,
    database: Database,
    *,
    cpa_id: str,
    stuf: StufMessage,
    data: bytes,
    gemeentecode: str | None,
    conversation_id: str | None = None,
    bericht_identificatie: str | None = None,
    payload_sha256: str | None = None,
    ids: IdGenerator,
    clock: Clock,
) -> StoredMessage:
    """Send the StUF message ``data`` (parsed as ``stuf``) to the other party of ``cpa_id``."""
    agreement = load_agreement(database, cpa_id, max_cpa_bytes=settings.max_cpa_bytes)
    binding = stuf_binding(agreement, settings.party_ids, stuf.kind)
    part = NewPart(content_id=f"{ids.uuid()}@ggk-ebms", content_type=STUF_CONTENT_TYPE, data=data)
    sg = stuf.stuurgegevens
    # One transaction (MessageStore.submit): the message, its StUF record and its send job, so a
    # Fo01 or retour about it can always be correlated (StUF-GGk crossRefnummer).
    return submit_message(
        settings,
        database,
        cpa_id=cpa_id,
        service=binding.service,
        action=binding.action,
        parts=[part],
        conversation_id=conversation_id,
        ids=ids,
        clock=clock,
        role=binding.role,
        stuf=StufRecord(
            message_pk=0,
            direction="out",
            berichtcode=stuf.kind.value,
            referentienummer=sg.referentienummer,
            zender=sg.zender.organisatie,
            ontvanger=sg.ontvanger.organisatie,
            gemeentecode=gemeentecode,
            berichttype=stuf.functie,
            cross_refnummer=sg.cross_refnummer,
            tijdstip_bericht=sg.tijdstip_bericht,
            bericht_identificatie=bericht_identificatie,
            payload_sha256=payload_sha256,
        ),
    )
