"""Ophalen: the mailbox as the GGk portal shows it, downloads as one ZIP, unmark, delete, retention.

Portal columns (GGk handleiding: Ophalen/berichtenlog): Gedownload, Publicatiedatum, Organisatie, Titel, where
the titel is ``yyyymmdd_hhmmss_<gemeentecode>_<berichttype>``. Downloading sets the gelezen mark (and
the message becomes Forwarded, see ``store.mailbox``); a gelezen item is removed after
``mailbox_gelezen_hours`` unless unmarked, every item after ``mailbox_max_days``, and a removed
message stays in the berichtenlog ``mailbox_removed_log_days``. ``purge`` runs inside ``serve``.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.services import audit
from ggk_ebms.services.context import NotFoundError, ServiceContext, ServiceError
from ggk_ebms.store.mailbox import Mailbox, MailboxItem
from ggk_ebms.store.ophalen import MailboxAdmin, RetentionResult
from ggk_ebms.store.rights import mailbox_gemeentecode

__all__ = [
    "Download",
    "OphaalItem",
    "OphaalQuery",
    "RetentionResult",
    "delete",
    "download",
    "list_items",
    "purge",
    "unmark",
]


@dataclass(frozen=True)
class OphaalItem:
    id: int
    gedownload: datetime | None  # the gelezen mark
    publicatiedatum: datetime
    organisatie: str  # the gemeentecode
    titel: str
    berichttype: str
    zender: str
    bestandsnaam: str
    size: int
    message_pk: int


@dataclass(frozen=True)
class OphaalQuery:
    gemeentecode: str | None = None
    berichttype: str | None = None
    unread_only: bool = False
    limit: int = 100


@dataclass(frozen=True)
class Download:
    """One ZIP with the payloads of the items asked for; every item is marked gelezen."""

    filename: str
    data: bytes
    items: tuple[OphaalItem, ...]


def titel(item: MailboxItem) -> str:
    return f"{item.created_at:%Y%m%d_%H%M%S}_{item.gemeentecode}_{item.berichttype}"


def _item(item: MailboxItem) -> OphaalItem:
    return OphaalItem(
        id=item.pk,
        gedownload=item.fetched_at,
        publicatiedatum=item.created_at,
        organisatie=item.gemeentecode,
        titel=titel(item),
        berichttype=item.berichttype,
        zender=item.zender,
        bestandsnaam=item.filename,
        size=item.size,
        message_pk=item.message_pk,
    )


def list_items(ctx: ServiceContext, query: OphaalQuery) -> tuple[OphaalItem, ...]:
    items = Mailbox(ctx.database, ctx.clock).list(
        gemeentecode=query.gemeentecode,
        berichttype=query.berichttype,
        include_fetched=not query.unread_only,
        limit=query.limit,
    )
    # Rights per gemeentecode (docs/koppeltabel.md): only the actor's gemeenten.
    return tuple(_item(i) for i in items if ctx.may_act_for(i.gemeentecode))


def _check_rights(ctx: ServiceContext, ids: Sequence[int]) -> None:
    """Another gemeente's item is unknown to a restricted actor (checked before anything is marked)."""
    if ctx.gemeentecodes is None:
        return
    for pk in ids:
        if not ctx.may_act_for(mailbox_gemeentecode(ctx.database, pk)):
            raise NotFoundError(f"geen bericht {pk} in Ophalen")


def download(ctx: ServiceContext, ids: Sequence[int]) -> Download:
    """The payloads of ``ids`` as one ZIP (names: the portal's titel + .xml); marks them gelezen."""
    if not ids:
        raise ServiceError("geen berichten gekozen")
    _check_rights(ctx, ids)
    box = Mailbox(ctx.database, ctx.clock)
    fetched: list[MailboxItem] = []
    for pk in dict.fromkeys(ids):
        try:
            fetched.append(box.fetch(pk))
        except GgkEbmsError:
            raise NotFoundError(f"geen bericht {pk} in Ophalen") from None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in fetched:
            assert item.payload is not None  # fetch loads it
            archive.writestr(f"{titel(item)}_{item.pk}.xml", item.payload)
    now = ctx.clock.now()
    audit.record(ctx, "mailbox-download", "items " + ",".join(str(i.pk) for i in fetched))
    name = (
        f"{titel(fetched[0])}.zip" if len(fetched) == 1 else f"{now:%Y%m%d_%H%M%S}_ophalen_{len(fetched)}.zip"
    )
    # The items as they are now: marked (the store hands them back as they were before).
    shown = tuple(dataclasses.replace(_item(i), gedownload=i.fetched_at or now) for i in fetched)
    return Download(name, buffer.getvalue(), shown)


def unmark(ctx: ServiceContext, ids: Sequence[int]) -> tuple[int, ...]:
    """Clear the gelezen mark, so retention keeps the items; returns those changed."""
    _check_rights(ctx, ids)
    changed = MailboxAdmin(ctx.database).unmark(ids)
    audit.record(ctx, "mailbox-unmark", "items " + ",".join(str(i) for i in changed))
    return tuple(changed)


def delete(ctx: ServiceContext, ids: Sequence[int]) -> tuple[int, ...]:
    """Remove items from Ophalen by hand; they stay findable in the berichtenlog for a while."""
    _check_rights(ctx, ids)
    removed = MailboxAdmin(ctx.database).remove(ids, at=ctx.clock.now(), reason="verwijderd")
    audit.record(ctx, "mailbox-delete", "items " + ",".join(str(i) for i in removed))
    return tuple(removed)


def purge(ctx: ServiceContext) -> RetentionResult:
    """The portal's retention rules, once (``serve`` runs this hourly)."""
    s = ctx.settings
    now = ctx.clock.now()
    return MailboxAdmin(ctx.database).apply_retention(
        now=now,
        gelezen_before=now - timedelta(hours=s.mailbox_gelezen_hours),
        created_before=now - timedelta(days=s.mailbox_max_days),
        removed_before=now - timedelta(days=s.mailbox_removed_log_days),
    )
