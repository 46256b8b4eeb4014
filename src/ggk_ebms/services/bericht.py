"""One message as the console shows it: both lifecycle layers, history, stuurgegevens, payload.

Layers (docs/lifecycle.md): the ebMS layer is the message's own status (sent, delivered,
acknowledged or failed per ebMS 2.0 §6 and §7); the StUF layer is what StUF-GGk made of it (a
Fo01 about it, or a retour on its referentienummer). The payload is returned as bytes: the
caller decides whether personal data may be shown (console.masking).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.services.context import NotFoundError, ServiceContext
from ggk_ebms.store.lifecycle import HistoryEntry
from ggk_ebms.store.messages import MessageStore, StoredMessage
from ggk_ebms.store.stuf import StoredStuf, StufStore
from ggk_ebms.stuf.envelope import parse_envelope

__all__ = ["BerichtDetail", "bericht", "lifecycle_layers"]


@dataclass(frozen=True)
class BerichtDetail:
    message: StoredMessage
    stuf: StoredStuf | None
    history: tuple[StoredMessage, ...]  # signals and replies that refer to this message
    steps: tuple[HistoryEntry, ...]  # the lifecycle's history of this message (docs/rules.md)
    payload: bytes | None  # the iStandaard payload inside the StUF envelope (personal data)
    ebms_layer: str
    stuf_layer: str


def lifecycle_layers(message: StoredMessage, stuf: StoredStuf | None) -> tuple[str, str]:
    """The two layers of the message lifecycle in words (docs/rules.md): ebMS and StUF business."""
    ebms = message.status + (f" ({message.status_reason})" if message.status_reason else "")
    if message.business_status is not None:
        business = message.business_status
        if message.business_code:
            business += f" ({message.business_code})"
        if message.business_reason:
            business += f": {message.business_reason}"
        if message.business_ref_pk is not None:
            business += f", bericht {message.business_ref_pk}"
        return ebms, business
    if stuf is None:
        return ebms, "geen StUF-bericht"
    if stuf.fout_code:
        return ebms, f"Fo01 {stuf.fout_code}: {stuf.fout_omschrijving or ''}".strip()
    return ebms, f"{stuf.berichtcode} zonder foutbericht"


def bericht(ctx: ServiceContext, pk: int, berichttypes: Collection[str]) -> BerichtDetail:
    """Message ``pk`` when its berichttype is one of ``berichttypes``; NotFoundError otherwise
    (also when it exists but is outside the caller's products: its existence is not told)."""
    store = MessageStore(ctx.database, ctx.clock)
    stuf = StufStore(ctx.database, ctx.clock).for_message(pk)
    # Outside the actor's gemeentecodes is as unknown as outside its products.
    if stuf is None or stuf.berichttype not in berichttypes or not ctx.may_act_for(stuf.gemeentecode):
        raise NotFoundError(f"geen bericht {pk}")
    try:
        message = store.get(pk)
    except GgkEbmsError:
        raise NotFoundError(f"geen bericht {pk}") from None
    history = tuple(m for m in store.list_related(message.message_id) if m.pk != pk)
    payload: bytes | None = None
    for part in store.parts(pk):
        try:
            parsed = parse_envelope(part.data)
        except GgkEbmsError:
            continue
        if parsed.payload is not None:
            payload = parsed.payload.data
            break
    ebms, stuf_layer = lifecycle_layers(message, stuf)
    steps = tuple(store.history(pk))
    return BerichtDetail(message, stuf, history, steps, payload, ebms, stuf_layer)
