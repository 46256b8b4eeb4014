"""Reads for rights per gemeentecode: which gemeente a stored message or mailbox item belongs to,
and a message listing narrowed to some gemeentecodes (docs/koppeltabel.md "Rights per
gemeentecode").

A message's gemeentecode is the StUF one the endpoint recorded (``stuf_message``), else the one
the koppeltabel read from the payload header. A message with neither belongs to no gemeente and
is shown only to an actor without a restriction.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import koppel_message, mailbox_item, message, stuf_message


def _gemeente_of_message() -> sa.ColumnElement[str | None]:
    return sa.func.coalesce(stuf_message.c.gemeentecode, koppel_message.c.gemeentecode)


def message_gemeentecode(db: Database, pk: int) -> str | None:
    with db.session() as session:
        row = session.execute(
            sa.select(message.c.pk, _gemeente_of_message().label("gemeente"))
            .select_from(message)
            .outerjoin(stuf_message, stuf_message.c.message_pk == message.c.pk)
            .outerjoin(koppel_message, koppel_message.c.message_pk == message.c.pk)
            .where(message.c.pk == pk)
        ).first()
    return None if row is None else row.gemeente


def mailbox_gemeentecode(db: Database, pk: int) -> str | None:
    with db.session() as session:
        value = session.execute(
            sa.select(mailbox_item.c.gemeentecode).where(mailbox_item.c.pk == pk)
        ).scalar_one_or_none()
    return value


def visible_messages(
    db: Database,
    gemeentecodes: Collection[str],
    *,
    direction: str | None,
    status: str | None,
    kind: str | None,
    cpa_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[int], int]:
    """Message pks (newest first) of these gemeentecodes with the API's filters, and the total."""
    where: list[sa.ColumnElement[bool]] = [_gemeente_of_message().in_(sorted(gemeentecodes))]
    if status is not None:
        where.append(sa.or_(message.c.status == status, message.c.business_status == status))
    for column, value in (
        (message.c.direction, direction),
        (message.c.kind, kind),
        (message.c.cpa_id, cpa_id),
    ):
        if value is not None:
            where.append(column == value)
    base = (
        sa.select(message.c.pk)
        .select_from(message)
        .outerjoin(stuf_message, stuf_message.c.message_pk == message.c.pk)
        .outerjoin(koppel_message, koppel_message.c.message_pk == message.c.pk)
        .where(*where)
    )
    with db.session() as session:
        pks = list(session.execute(base.order_by(message.c.pk.desc()).limit(limit).offset(offset)).scalars())
        total = session.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar_one()
    return pks, int(total)


def gemeentecodes_by_message_id(db: Database, message_ids: Collection[str]) -> dict[str, str | None]:
    """The gemeentecode of each business message with one of these MessageIds (either direction:
    a MessageId of two directions takes the gemeente of either, and both must be allowed)."""
    wanted = sorted(set(message_ids))
    found: dict[str, str | None] = {}
    with db.session() as session:
        for start in range(0, len(wanted), 500):
            rows = session.execute(
                sa.select(message.c.message_id, _gemeente_of_message().label("gemeente"))
                .select_from(message)
                .outerjoin(stuf_message, stuf_message.c.message_pk == message.c.pk)
                .outerjoin(koppel_message, koppel_message.c.message_pk == message.c.pk)
                .where(message.c.message_id.in_(wanted[start : start + 500]))
            ).all()
            for row in rows:
                if row.message_id in found and found[row.message_id] != row.gemeente:
                    found[row.message_id] = None  # two gemeenten: nobody restricted may see it
                else:
                    found[row.message_id] = row.gemeente
    return found
