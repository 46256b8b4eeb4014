"""Ophalen housekeeping on the mailbox: unmark, remove a selection, and the portal's retention.

GGk Ophalen (IB handleidingen GGk and berichtuitwisseling): an item marked gelezen is removed 168 hours later
unless unmarked; every item is removed after 90 days; a removed message stays findable in the berichtenlog for
60
days and is then forgotten. A removed item keeps its row without payload (personal data goes at
once), so the berichtenlog still shows what happened; ``forget_removed`` deletes the message
(item, parts, jobs by cascade) when its 60 days are over. ``MessageStore.purge`` leaves messages
with a mailbox item alone: their lifetime is decided here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import mailbox_item, message


@dataclass(frozen=True)
class RetentionResult:
    removed_gelezen: int
    removed_old: int
    forgotten: int


class MailboxAdmin:
    def __init__(self, db: Database) -> None:
        self.db = db

    def unmark(self, pks: Sequence[int]) -> list[int]:
        """Clear the gelezen mark of these items (not removed ones); returns the pks changed."""
        with self.db.session() as session:
            rows = session.execute(
                sa.update(mailbox_item)
                .where(
                    mailbox_item.c.pk.in_(list(pks)),
                    mailbox_item.c.fetched_at.is_not(None),
                    mailbox_item.c.removed_at.is_(None),
                )
                .values(fetched_at=None)
                .returning(mailbox_item.c.pk)
            ).all()
        return sorted(int(r[0]) for r in rows)

    def remove(self, pks: Sequence[int], *, at: datetime, reason: str) -> list[int]:
        """Remove items from Ophalen: the payload goes, the row stays for the berichtenlog."""
        with self.db.session() as session:
            rows = session.execute(
                sa.update(mailbox_item)
                .where(mailbox_item.c.pk.in_(list(pks)), mailbox_item.c.removed_at.is_(None))
                .values(removed_at=at, removed_reason=reason, payload=b"", envelope=None)
                .returning(mailbox_item.c.pk)
            ).all()
        return sorted(int(r[0]) for r in rows)

    def apply_retention(
        self, *, now: datetime, gelezen_before: datetime, created_before: datetime, removed_before: datetime
    ) -> RetentionResult:
        """One pass of the portal's three rules; the caller turns the settings into moments."""
        live = mailbox_item.c.removed_at.is_(None)
        with self.db.session() as session:
            gelezen = session.execute(
                sa.update(mailbox_item)
                .where(
                    live, mailbox_item.c.fetched_at.is_not(None), mailbox_item.c.fetched_at < gelezen_before
                )
                .values(removed_at=now, removed_reason="gelezen-termijn", payload=b"", envelope=None)
            ).rowcount  # type: ignore[attr-defined]
            old = session.execute(
                sa.update(mailbox_item)
                .where(live, mailbox_item.c.created_at < created_before)
                .values(removed_at=now, removed_reason="bewaartermijn", payload=b"", envelope=None)
            ).rowcount  # type: ignore[attr-defined]
            expired = sa.select(mailbox_item.c.message_pk).where(
                mailbox_item.c.removed_at.is_not(None), mailbox_item.c.removed_at < removed_before
            )
            forgotten = session.execute(
                sa.delete(message).where(message.c.pk.in_(expired.scalar_subquery()))
            ).rowcount  # type: ignore[attr-defined]
        return RetentionResult(int(gelezen), int(old), int(forgotten))
