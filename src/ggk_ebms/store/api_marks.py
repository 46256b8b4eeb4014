"""What API clients took care of, and the message queries of the ebms-core REST v19 resources.

A received business message is "unprocessed" until a client marks it processed (PATCH
messages/{id}); every business message has at most one event (received, delivered, failed,
expired: ``api.states.event_type``) that is "unprocessed" until a client marks it (PATCH
events/{id}). Marks live in their own table so the message lifecycle is left alone.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import exc

from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.errors import StoreError
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import api_mark, message, stuf_message

# The ebms-core REST v19 message filter: query parameter -> message column.
FILTER_COLUMNS: Final[Mapping[str, str]] = {
    "cpaId": "cpa_id",
    "fromPartyId": "from_party_id",
    "fromRole": "from_role",
    "toPartyId": "to_party_id",
    "toRole": "to_role",
    "service": "service",
    "action": "action",
    "conversationId": "conversation_id",
    "messageId": "message_id",
    "refToMessageId": "ref_to_message_id",
}


@dataclass(frozen=True)
class EventRow:
    pk: int
    message_id: str
    direction: str
    status: str
    cpa_id: str
    action: str
    updated_at: Any
    event_marked: bool
    # StUF-GGk stuurgegevens when the message carried a StUF envelope: a Fo01 (refusal) or a
    # retour is a business outcome an application wants to see in the feed.
    berichtcode: str | None = None
    berichttype: str | None = None
    fout_code: str | None = None
    cross_refnummer: str | None = None


def _marked(what: str) -> sa.Exists:
    return sa.exists().where(api_mark.c.message_pk == message.c.pk, api_mark.c.what == what)


def _filters(query: sa.Select[Any], filters: Mapping[str, str]) -> sa.Select[Any]:
    for key, value in filters.items():
        column = FILTER_COLUMNS.get(key)
        if column is not None and value:
            query = query.where(message.c[column] == value)
    return query


def event_condition(kinds: Collection[tuple[str, Collection[str]]]) -> sa.ColumnElement[bool]:
    """Messages that carry an event: business messages in one of (direction, statuses)."""
    return sa.and_(
        message.c.kind == "business",
        sa.or_(
            *(sa.and_(message.c.direction == d, message.c.status.in_(list(s))) for d, s in kinds),
            sa.false(),
        ),
    )


class MarkStore:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def mark(self, message_pk: int, what: str) -> bool:
        """Mark once; False when it was marked already."""
        try:
            with self.db.session() as session:
                session.execute(
                    sa.insert(api_mark).values(message_pk=message_pk, what=what, marked_at=self.clock.now())
                )
        except StoreError as error:  # Database.session translates the IntegrityError
            if isinstance(error.__cause__, exc.IntegrityError):
                return False
            raise
        return True

    def is_marked(self, message_pk: int, what: str) -> bool:
        with self.db.session() as session:
            found = session.execute(
                sa.select(api_mark.c.pk).where(api_mark.c.message_pk == message_pk, api_mark.c.what == what)
            ).first()
        return found is not None

    def unprocessed_message_ids(
        self, filters: Mapping[str, str], *, not_statuses: Collection[str], limit: int
    ) -> builtins.list[str]:
        """Received business messages no client has marked processed, oldest first."""
        query = sa.select(message.c.message_id).where(
            message.c.direction == "in",
            message.c.kind == "business",
            message.c.status.not_in(list(not_statuses)),
            ~_marked("message"),
        )
        query = _filters(query, filters).order_by(message.c.pk).limit(limit)
        with self.db.session() as session:
            return [str(v) for v in session.execute(query).scalars()]

    def events(
        self,
        condition: sa.ColumnElement[bool],
        filters: Mapping[str, str],
        *,
        unprocessed_only: bool,
        limit: int,
        offset: int = 0,
    ) -> builtins.list[EventRow]:
        marked = _marked("event")
        query = sa.select(
            message.c.pk,
            message.c.message_id,
            message.c.direction,
            message.c.status,
            message.c.cpa_id,
            message.c.action,
            message.c.updated_at,
            marked.label("event_marked"),
            stuf_message.c.berichtcode,
            stuf_message.c.berichttype,
            stuf_message.c.fout_code,
            stuf_message.c.cross_refnummer,
        )
        query = query.select_from(
            message.outerjoin(stuf_message, stuf_message.c.message_pk == message.c.pk)
        ).where(condition)
        if unprocessed_only:
            query = query.where(~marked)
        query = _filters(query, filters).order_by(message.c.updated_at, message.c.pk)
        query = query.limit(limit).offset(offset)
        with self.db.session() as session:
            return [EventRow(**row._mapping) for row in session.execute(query).all()]
