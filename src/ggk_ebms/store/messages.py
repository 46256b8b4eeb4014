"""Stored ebMS messages, their MIME parts and the signals we answered them with.

The receive rule of the architecture is enforced here: ``receive`` stores the received message,
its parts, the signal that goes back and the delivery job in ONE transaction, so an
Acknowledgment is only ever returned for a message that is durably stored, and a crash never
leaves a message without its job (or a job without its message).

Plain frozen dataclasses go in and come out; no ORM object or SQLAlchemy row leaves the store.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import hashlib
import weakref
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Session

from ggk_ebms import lifecycle
from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.errors import (
    DuplicateMessageError,
    StateTransitionError,
    StoreError,
    StoreUnavailableError,
)
from ggk_ebms.lifecycle import Event, Status, Step
from ggk_ebms.spool import SpooledRange
from ggk_ebms.store import lifecycle as steps
from ggk_ebms.store.db import Database
from ggk_ebms.store.group_commit import DEFAULT_MAX_GROUP, AsyncGroupCommitter, GroupCommitter, SplitGroup
from ggk_ebms.store.jobs import insert_job
from ggk_ebms.store.large_parts import (
    PART_SLICE,
    insert_large_part,
    is_large,
    read_part_data,
    read_part_spooled,
)
from ggk_ebms.store.receive_pg import RowSet, insert_received
from ggk_ebms.store.stuf import StufRecord, upsert_record
from ggk_ebms.store.tables import (
    DIRECTIONS,
    KINDS,
    MESSAGE_ID_MAX,
    SIGNAL_KINDS,
    STATUSES,
    job,
    mailbox_item,
    message_part,
)
from ggk_ebms.store.tables import (
    message as message_table,
)

UNFINISHED_JOB_STATUSES = ("pending", "running")


@dataclass(frozen=True, kw_only=True)
class NewMessage:
    """A message to store: every column but the primary key and the bookkeeping times."""

    direction: str
    message_id: str
    cpa_id: str
    conversation_id: str
    from_party_id: str
    to_party_id: str
    service: str
    action: str
    kind: str
    timestamp: datetime
    status: str
    ref_to_message_id: str | None = None
    from_party_type: str | None = None
    from_role: str | None = None
    to_party_type: str | None = None
    to_role: str | None = None
    service_type: str | None = None
    time_to_live: datetime | None = None
    status_reason: str | None = None
    # sha256 hex over the identity-relevant content (ebMS 2.0
    # §6.5.3; our choice in docs/rules.md), computed by the caller.
    content_digest: str | None = None
    envelope: bytes | None = None
    content_type: str | None = None
    sync_reply: bool = False
    error_code: str | None = None


@dataclass(frozen=True, kw_only=True)
class StoredMessage(NewMessage):
    """A stored message. ``envelope`` is None in listings unless they were asked to include it."""

    pk: int
    created_at: datetime
    updated_at: datetime
    # The business layer of a StUF-GGk message (ggk_ebms.lifecycle.Business), None otherwise.
    business_status: str | None = None
    business_code: str | None = None
    business_reason: str | None = None
    business_ref_pk: int | None = None


@dataclass(frozen=True)
class NewPart:
    """One MIME part of a message (payload or attachment), stored byte for byte.

    ``spooled``: the content left in the spooled request body (ggk_ebms/spool.py), for a large
    received part stored without a copy on the heap; ``data`` is then empty. ``of`` picks the
    field; ``content()``, ``size`` and ``sha256()`` read either.
    """

    content_id: str
    content_type: str
    data: bytes
    spooled: SpooledRange | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, content_id: str, content_type: str, content: bytes | SpooledRange) -> NewPart:
        if isinstance(content, bytes):
            return cls(content_id, content_type, content)
        return cls(content_id, content_type, b"", content)

    def content(self) -> bytes | SpooledRange:
        return self.data if self.spooled is None else self.spooled

    def bound(self) -> bytes | memoryview:
        """The content as one bound parameter (a part small enough to go in whole)."""
        return self.data if self.spooled is None else self.spooled.view()

    @property
    def size(self) -> int:
        return len(self.data) if self.spooled is None else self.spooled.size

    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest() if self.spooled is None else self.spooled.sha256()


@dataclass(frozen=True)
class StoredPart:
    pk: int
    message_pk: int
    seq: int
    content_id: str
    content_type: str
    data: bytes
    sha256: str
    size: int


@dataclass(frozen=True)
class SignalEffect:
    """What a received Acknowledgment or MessageError does to the message we sent (ebMS 2.0
    §6.5.3, §4.2): applied in the same transaction that stores the signal."""

    message_pk: int
    event: Event
    reason: str
    code: str | None = None


@dataclass(frozen=True)
class ReceiveResult:
    message_pk: int
    response_pk: int | None


_MESSAGE_FIELDS = tuple(f.name for f in dataclasses.fields(NewMessage))
# Statements built once, values passed as parameters: SQLAlchemy then finds the compiled form in
# its cache by a fixed key. ``.values(**row)`` would embed every value in the statement and
# rebuild its cache key per row (docs/performance.md profile: about a fifth of the pipeline's CPU time).
_INSERT_MESSAGE = sa.insert(message_table).returning(message_table.c.pk)
# Several messages in one multi-row INSERT ... RETURNING (the received message and our signal):
# one round trip instead of two; the keys come back in the order of the rows given.
_INSERT_MESSAGES = sa.insert(message_table).returning(message_table.c.pk, sort_by_parameter_order=True)
# The same rows without RETURNING: an executemany of ONE single-row statement (psycopg's
# pipeline), whose conversion to PostgreSQL placeholders the driver caches. The multi-row
# RETURNING form is one new statement text per group size, and psycopg re-parses every
# placeholder of it each time (28 columns per row): an eighth of the send worker's CPU time
# went there for the synchronous Acknowledgments it keeps (docs/performance.md "Outbound").
_INSERT_MESSAGE_ROWS = sa.insert(message_table)
_STORED_FIELDS = tuple(f.name for f in dataclasses.fields(StoredMessage))
_WITHOUT_ENVELOPE = tuple(message_table.c[name] for name in _STORED_FIELDS if name != "envelope")


def _check(new: NewMessage, direction: str) -> None:
    """Refuse caller mistakes before they reach the database (they are bugs, not input errors)."""
    if new.direction != direction:
        raise ValueError(f"expected a message with direction {direction!r}, got {new.direction!r}")
    if new.direction not in DIRECTIONS or new.kind not in KINDS or new.status not in STATUSES:
        raise ValueError(f"unknown direction/kind/status {new.direction!r}/{new.kind!r}/{new.status!r}")
    if not new.message_id or len(new.message_id) > MESSAGE_ID_MAX:
        raise StoreError(f"MessageId must be 1 to {MESSAGE_ID_MAX} characters long")


def _by_id(direction: str, message_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(message_table.c.direction == direction, message_table.c.message_id == message_id)


def _row_to_message(row: sa.Row[Any]) -> StoredMessage:
    # A plain dict of the row in one C-level zip: RowMapping answers each ``in`` and ``[]`` in
    # Python, and the delivery worker reads every message of its batch this way
    # (docs/performance.md, round 10).
    values = dict(zip(row._fields, row, strict=True))
    fields = {name: values[name] for name in _STORED_FIELDS if name in values}
    envelope = fields.get("envelope")
    fields["envelope"] = None if envelope is None else bytes(envelope)
    fields["sync_reply"] = bool(fields["sync_reply"])
    return StoredMessage(**fields)


def _row_to_part(row: sa.Row[Any]) -> StoredPart:
    return StoredPart(
        pk=row.pk,
        message_pk=row.message_pk,
        seq=row.seq,
        content_id=row.content_id,
        content_type=row.content_type,
        data=b"" if row.data is None else bytes(row.data),
        sha256=row.sha256,
        size=row.size,
    )


class _Conflict(Exception):
    """A unique constraint stopped an insert; resolved into a clear error after the rollback."""


class _EffectRefused(Exception):
    """The lifecycle refused a received signal's effect (or its sent message is gone): the group
    is rolled back and its members written one by one, so only that receive fails, with the
    original error (``error``)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, kw_only=True)
class _Receive:
    """One call of ``MessageStore.receive``, as it waits for its group (store/group_commit.py)."""

    message: NewMessage
    parts: tuple[NewPart, ...]
    response: NewMessage | None
    deliver: bool
    send_response_async: bool
    effect: SignalEffect | None
    now: datetime


def _message_row(new: NewMessage, now: datetime) -> dict[str, Any]:
    """The ``message`` row of a new message, as every insert path writes it."""
    values: dict[str, Any] = {name: getattr(new, name) for name in _MESSAGE_FIELDS}
    values.update(created_at=now, updated_at=now)
    return values


def _creation_event(pk: int, new: NewMessage, now: datetime) -> dict[str, Any]:
    """The first history row of a new message (store/lifecycle.py): its status at creation."""
    return steps.creation_row(
        pk,
        direction=new.direction,
        kind=new.kind,
        status=new.status,
        now=now,
        reason=new.status_reason,
        code=new.error_code,
    )


def _receive_rows(
    item: _Receive,
    rows: builtins.list[dict[str, Any]],
    part_rows: builtins.list[RowSet],
    job_rows: builtins.list[RowSet],
    events: builtins.list[RowSet],
) -> None:
    """The rows of one receive for the one-statement path (store/receive_pg.py), appended."""
    now = item.now
    received = item.message.message_id
    news = [item.message] if item.response is None else [item.message, item.response]
    for new in news:
        rows.append(_message_row(new, now))
        events.append(RowSet(new.direction, new.message_id, _creation_event(0, new, now)))
    for seq, part in enumerate(item.parts):
        part_rows.append(
            RowSet(
                "in",
                received,
                {
                    "seq": seq,
                    "content_id": part.content_id,
                    "content_type": part.content_type,
                    "data": part.bound(),
                    "sha256": part.sha256(),
                    "size": part.size,
                },
            )
        )
    wanted = [("in", received, "deliver")] if item.deliver else []
    if item.response is not None and item.send_response_async:
        wanted.append(("out", item.response.message_id, "send"))
    for direction, message_id, queue in wanted:
        job_rows.append(
            RowSet(
                direction,
                message_id,
                {
                    "queue": queue,
                    "status": "pending",
                    "due_at": now,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        )


# A group whose parts hold at most this much goes in as a statement that is its own liveness
# check (Database.run_statement ``small``): it is sent and stored well within db_ping_timeout.
_SMALL_STATEMENT_BYTES = 1024 * 1024


class MessageStore:
    """Inbound and outbound messages, with their parts, signals and jobs."""

    def __init__(
        self, db: Database, clock: Clock | None = None, *, max_group: int = DEFAULT_MAX_GROUP
    ) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        # Receives of concurrent threads committed together (store/group_commit.py).
        self._group: GroupCommitter[_Receive, ReceiveResult] = GroupCommitter(
            self._write_group,
            self._write_one,
            max_group=max_group,
            fails_waiting=lambda error: isinstance(error, StoreUnavailableError),
        )
        # The same for receives awaited on an event loop (``receive_async``), one per loop.
        self._async_groups: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncGroupCommitter[_Receive, ReceiveResult]
        ] = weakref.WeakKeyDictionary()

    @property
    def receives_waiting(self) -> int:
        """Receives queued for the next group commit (observability and tests)."""
        return self._group.waiting + sum(group.waiting for group in list(self._async_groups.values()))

    # --- writing ----------------------------------------------------------------------------------

    def _insert(
        self, session: Session, new: NewMessage, now: datetime, events: builtins.list[dict[str, Any]]
    ) -> int:
        """Insert ``new``; its first history entry is added to ``events`` for one insert later."""
        try:
            pk: int = session.execute(_INSERT_MESSAGE, _message_row(new, now)).scalar_one()
        except exc.IntegrityError as error:
            raise _Conflict from error
        events.append(_creation_event(pk, new, now))
        return pk

    def _insert_many(
        self,
        session: Session,
        news: Sequence[NewMessage],
        now: datetime,
        events: builtins.list[dict[str, Any]],
    ) -> builtins.list[int]:
        """``_insert`` for several messages in one statement; keys in the order of ``news``."""
        rows = [_message_row(new, now) for new in news]
        try:
            pks: builtins.list[int] = list(session.execute(_INSERT_MESSAGES, rows).scalars())
        except exc.IntegrityError as error:
            raise _Conflict from error
        if len(pks) != len(news):
            raise StoreError(f"stored {len(news)} messages but got {len(pks)} keys back")
        events.extend(_creation_event(pk, new, now) for pk, new in zip(pks, news, strict=True))
        return pks

    def _insert_rows(
        self,
        session: Session,
        news: Sequence[NewMessage],
        now: datetime,
        events: builtins.list[dict[str, Any]],
    ) -> builtins.list[int]:
        """``_insert_many`` for a larger group (distinct MessageIds): the rows by executemany,
        then their keys in one query by (direction, MessageId), the key the UNIQUE constraint
        guarantees."""
        try:
            session.execute(_INSERT_MESSAGE_ROWS, [_message_row(new, now) for new in news])
        except exc.IntegrityError as error:
            raise _Conflict from error
        rows = session.execute(
            sa.select(message_table.c.pk, message_table.c.direction, message_table.c.message_id).where(
                message_table.c.direction.in_(sorted({new.direction for new in news})),
                message_table.c.message_id.in_(sorted({new.message_id for new in news})),
            )
        ).all()
        keys = {(row.direction, row.message_id): int(row.pk) for row in rows}
        pks = [keys[(new.direction, new.message_id)] for new in news]
        events.extend(_creation_event(pk, new, now) for pk, new in zip(pks, news, strict=True))
        return pks

    def _insert_parts(self, session: Session, message_pk: int, parts: Sequence[NewPart]) -> None:
        rows = [
            {
                "message_pk": message_pk,
                "seq": seq,
                "content_id": part.content_id,
                "content_type": part.content_type,
                "sha256": part.sha256(),
                "size": part.size,
            }
            for seq, part in enumerate(parts)
        ]
        pairs = list(zip(rows, parts, strict=True))
        small = [row | {"data": part.bound()} for row, part in pairs if not is_large(part.size)]
        if small:
            session.execute(sa.insert(message_part), small)
        for row, part in pairs:
            if is_large(part.size):
                # Written in slices, not bound whole (large_parts.py, docs/performance.md "Memory").
                insert_large_part(session, row, part.content())

    def _enqueue(self, session: Session, queue: str, message_pk: int, due_at: datetime, now: datetime) -> int:
        return insert_job(session, queue, message_pk, due_at=due_at, now=now)

    def _existing_pk(self, session: Session, direction: str, message_id: str) -> int | None:
        return session.execute(
            sa.select(message_table.c.pk).where(_by_id(direction, message_id))
        ).scalar_one_or_none()

    def _raise_conflict(self, *messages: NewMessage) -> None:
        """After a unique violation: name the message whose MessageId is taken."""
        with self.db.session() as session:
            for new in messages:
                existing = self._existing_pk(session, new.direction, new.message_id)
                if existing is not None:
                    raise DuplicateMessageError(new.message_id, existing)
        raise StoreError("a unique constraint refused the message")

    def receive(
        self,
        message: NewMessage,
        parts: Sequence[NewPart],
        *,
        response: NewMessage | None,
        deliver: bool,
        send_response_async: bool,
        effect: SignalEffect | None = None,
    ) -> ReceiveResult:
        """Store a received message, its parts, our answer to it and its jobs, all or nothing.

        ``response`` is the signal we answer with (Acknowledgment, MessageError, Pong or
        StatusResponse): stored as 'Sent' when it goes back in this HTTP response, or as 'Created'
        with a 'send' job when ``send_response_async`` (ebMS 2.0 §4.3, BP EB015: syncReplyMode none). With
        ``deliver`` a 'deliver' job hands the message to routing.

        ``effect`` is what a received Acknowledgment/MessageError does to the message we sent;
        it is applied in the same transaction, so the signal and its effect are stored together.

        Raises DuplicateMessageError when this MessageId was received before (ebMS 2.0 §6.5.6);
        nothing is stored then, and the caller replays the stored signal or refuses.

        Concurrent calls share a transaction (group commit, store/group_commit.py); each returns
        only after the commit that holds its own message, with its own result or error.
        """
        item = self._receive_item(message, parts, response, deliver, send_response_async, effect)
        # Concurrent receives of this process share one transaction and one commit
        # (store/group_commit.py); this returns only after the commit that holds this message.
        # A received Acknowledgment/MessageError with an effect on a sent message is one of them:
        # the effects of a group are applied together in its transaction (``_apply_effects``),
        # and one the lifecycle refuses splits the group, so it never fails the others.
        return self._group.submit(item)

    async def receive_async(
        self,
        message: NewMessage,
        parts: Sequence[NewPart],
        *,
        response: NewMessage | None,
        deliver: bool,
        send_response_async: bool,
        effect: SignalEffect | None = None,
    ) -> ReceiveResult:
        """``receive`` for a caller on an event loop: the same rows, rules and errors, awaited.

        The write runs in the store's writer thread, grouped with the other receives awaited on
        this loop (store/group_commit.py ``AsyncGroupCommitter``); this returns only after the
        commit that holds this message, so ack-after-commit holds as in ``receive``.
        """
        item = self._receive_item(message, parts, response, deliver, send_response_async, effect)
        loop = asyncio.get_running_loop()
        group = self._async_groups.get(loop)
        if group is None:
            group = AsyncGroupCommitter(self._group.writes)
            self._async_groups[loop] = group
        return await group.submit(item)

    def _receive_item(
        self,
        message: NewMessage,
        parts: Sequence[NewPart],
        response: NewMessage | None,
        deliver: bool,
        send_response_async: bool,
        effect: SignalEffect | None,
    ) -> _Receive:
        _check(message, "in")
        if response is not None:
            _check(response, "out")
            if response.kind not in SIGNAL_KINDS:
                raise ValueError(f"a response must be an MSH signal, not {response.kind!r}")
            response = dataclasses.replace(
                response, status=Status.CREATED if send_response_async else Status.SENT
            )
        return _Receive(
            message=message,
            parts=tuple(parts),
            response=response,
            deliver=deliver,
            send_response_async=send_response_async,
            effect=effect,
            now=self.clock.now(),
        )

    # --- the receive transaction, for one message or a group -------------------------------------

    def _at_once(self, items: Sequence[_Receive]) -> bool:
        # PostgreSQL, hot path: every row of every member in one statement (store/receive_pg.py).
        # A large part goes in by COPY (large_parts.py), which one statement cannot hold: such a
        # group takes the statement-per-table path.
        return self.db.backend == "postgresql" and all(
            not any(is_large(p.size) for p in item.parts) for item in items
        )

    def _write_one(self, item: _Receive) -> ReceiveResult:
        """One receive in its own transaction; a UNIQUE conflict becomes DuplicateMessageError,
        a refused effect raises the lifecycle's (or the store's) own error."""
        try:
            return self._write([item])[0]
        except _Conflict:
            self._raise_conflict(item.message, *([item.response] if item.response is not None else []))
            raise  # pragma: no cover - _raise_conflict always raises
        except _EffectRefused as refused:
            raise refused.error from None

    def _write_group(self, items: Sequence[_Receive]) -> builtins.list[ReceiveResult]:
        """Several receives in one transaction; a UNIQUE conflict or a refused effect rolls back
        all of them, and then each is written on its own (both are rare; the others must not
        fail)."""
        if len(items) == 1:
            return [self._write_one(items[0])]
        try:
            return self._write(items)
        except (_Conflict, _EffectRefused):
            raise SplitGroup from None

    def _write(self, items: Sequence[_Receive]) -> builtins.list[ReceiveResult]:
        effects = any(item.effect is not None for item in items)
        if self._at_once(items) and not effects:
            # One statement: autocommit, no BEGIN/COMMIT round trips; ``run_statement`` tries
            # once more on a fresh connection if the pooled one was dead.
            small = sum(part.size for item in items for part in item.parts) <= _SMALL_STATEMENT_BYTES
            return self.db.run_statement(lambda conn: self._store_at_once(conn, items), small=small)
        if self._at_once(items):
            # The same statement, then the group's effects, in ONE transaction: a signal and
            # its effect are stored together or not at all.
            return self.db.run(
                lambda session: self._with_effects(session, items, self._store_at_once(session, items))
            )
        # ``run``: one transaction, one retry on a fresh connection if the pooled one was dead.
        return self.db.run(
            lambda session: self._with_effects(session, items, [self._store(session, item) for item in items])
        )

    def _with_effects(
        self, session: Session, items: Sequence[_Receive], results: builtins.list[ReceiveResult]
    ) -> builtins.list[ReceiveResult]:
        """Apply the effects of the group's received signals after their rows are in (same
        transaction); ``results`` unchanged."""
        effects = [item.effect for item in items if item.effect is not None]
        if effects:
            # One time for the group's steps: the latest of its members' (they differ by the
            # milliseconds the group waited).
            self._apply_effects(session, effects, max(item.now for item in items))
        return results

    def _store_at_once(
        self, conn: Session | sa.Connection, items: Sequence[_Receive]
    ) -> builtins.list[ReceiveResult]:
        rows: builtins.list[dict[str, Any]] = []
        part_rows: builtins.list[RowSet] = []
        job_rows: builtins.list[RowSet] = []
        events: builtins.list[RowSet] = []
        for item in items:
            _receive_rows(item, rows, part_rows, job_rows, events)
        try:
            pks = insert_received(conn, rows, part_rows, job_rows, events)
        except exc.IntegrityError as error:
            raise _Conflict from error
        results = []
        for item in items:
            answer = item.response
            results.append(
                ReceiveResult(
                    pks[("in", item.message.message_id)],
                    None if answer is None else pks[("out", answer.message_id)],
                )
            )
        return results

    def _store(self, session: Session, item: _Receive) -> ReceiveResult:
        # No SELECT first: the UNIQUE (direction, message_id) constraint finds a duplicate
        # atomically, even between concurrent copies (hot path: one round trip less per
        # received message).
        events: builtins.list[dict[str, Any]] = []
        response_pk = None
        now = item.now
        if item.response is None:
            message_pk = self._insert(session, item.message, now, events)
        else:
            message_pk, response_pk = self._insert_many(session, (item.message, item.response), now, events)
        self._insert_parts(session, message_pk, item.parts)
        if response_pk is not None and item.send_response_async:
            self._enqueue(session, "send", response_pk, now, now)
        if item.deliver:
            self._enqueue(session, "deliver", message_pk, now, now)
        steps.insert_events(session, events)
        return ReceiveResult(message_pk, response_pk)

    def _apply_effects(self, session: Session, effects: Sequence[SignalEffect], now: datetime) -> None:
        """What received Acknowledgments/MessageErrors do to our sent messages (ebMS 2.0 §6.5.3,
        §4.2), for a whole group in a few statements: the lifecycle's guarded batch step
        (store/lifecycle.py ``transition_many``: one read, one guarded UPDATE per current status,
        one history insert), then one UPDATE for the send jobs with nothing left to do.

        A step the lifecycle refuses, or a sent message that is gone, raises ``_EffectRefused``:
        the caller rolls the group back and writes its members one by one.
        """
        changes = [steps.Change(e.message_pk, e.event, e.reason, e.code) for e in effects]
        if self.db.backend == "postgresql" and len({c.message_pk for c in changes}) > 1:
            # Lock the sent messages in key order first, as one UPDATE over a list of keys (the
            # send worker's batch steps) takes them in index order: a group of effects and a
            # group of outcomes then wait for each other rather than deadlock.
            session.execute(
                sa.select(message_table.c.pk)
                .where(message_table.c.pk.in_(sorted({c.message_pk for c in changes})))
                .order_by(message_table.c.pk)
                .with_for_update()
            )
        try:
            taken = steps.transition_many(session, changes, now=now)
        except StoreUnavailableError:
            raise
        except (StateTransitionError, StoreError) as error:
            raise _EffectRefused(error) from error
        settled = sorted(
            {
                change.message_pk
                for change, step in zip(changes, taken, strict=True)
                if step.writes and lifecycle.is_final(step.flow, step.target)
            }
        )
        if settled:
            # The send jobs waiting for these signals (a retry at RetryInterval, or Expired at
            # TimeToLive) have nothing left to do. A job a worker holds right now is left to it:
            # its guarded update finds the final state and keeps it.
            session.execute(
                sa.update(job)
                .where(job.c.message_pk.in_(settled), job.c.queue == "send", job.c.status == "pending")
                .values(status="done", last_error=None, updated_at=now)
            )

    def submit(
        self,
        message: NewMessage,
        parts: Sequence[NewPart],
        *,
        due_at: datetime,
        stuf: StufRecord | None = None,
    ) -> int:
        """Store an outbound message with its parts and a 'send' job due at ``due_at``, atomically.

        ``stuf``: the stuurgegevens of the StUF message it carries (``message_pk`` is filled in
        here), stored in the same transaction with the business status 'sent'.
        """
        _check(message, "out")
        now = self.clock.now()
        try:
            with self.db.session() as session:
                existing = self._existing_pk(session, "out", message.message_id)
                if existing is not None:
                    raise DuplicateMessageError(message.message_id, existing)
                events: builtins.list[dict[str, Any]] = []
                pk = self._insert(session, message, now, events)
                steps.insert_events(session, events)
                self._insert_parts(session, pk, parts)
                self._enqueue(session, "send", pk, due_at, now)
                if stuf is not None:
                    upsert_record(session, dataclasses.replace(stuf, message_pk=pk), now=now)
                    steps.business_transition(session, pk, Event.STUF_SENT, now=now)
        except _Conflict:
            self._raise_conflict(message)
            raise  # pragma: no cover - _raise_conflict always raises
        return pk

    def resend(self, pk: int, *, due_at: datetime, reason: str | None = None) -> int:
        """Queue a stored outbound message (an asynchronous signal) to be sent again; returns the job pk.

        For a duplicate whose answer went out asynchronously (ebMS 2.0 §6.5.3: the stored signal is
        re-queued unchanged). A send job that is still pending or running is reused, so a burst
        of duplicates sends the signal once more, not once per copy.
        """
        now = self.clock.now()
        with self.db.session() as session:
            row = session.execute(
                sa.select(message_table.c.direction, message_table.c.kind)
                .where(message_table.c.pk == pk)
                .with_for_update()
            ).first()
            if row is None or row.direction != "out":
                raise StoreError(f"no outbound message with pk {pk}")
            waiting = session.execute(
                sa.select(job.c.pk)
                .where(
                    job.c.message_pk == pk, job.c.queue == "send", job.c.status.in_(UNFINISHED_JOB_STATUSES)
                )
                .limit(1)
            ).scalar_one_or_none()
            if waiting is not None:
                return int(waiting)
            job_pk = insert_job(session, "send", pk, due_at=due_at, now=now)
            event = Event.OPERATOR_RESEND if row.kind == "business" else Event.SIGNAL_RESEND
            steps.transition(session, pk, event, now=now, reason=reason)
        return job_pk

    def redeliver(self, pk: int, *, due_at: datetime) -> int:
        """Queue a parked received message for delivery again; returns the new job's pk.

        One transaction: the message is Received again (and its business status back to
        received) exactly when its new 'deliver' job exists.
        """
        now = self.clock.now()
        with self.db.session() as session:
            job_pk = insert_job(session, "deliver", pk, due_at=due_at, now=now)
            reason = f"re-try asked by an operator (job {job_pk})"
            steps.transition(session, pk, Event.OPERATOR_RETRY, now=now, reason=reason)
            business = session.execute(
                sa.select(message_table.c.business_status).where(message_table.c.pk == pk)
            ).scalar_one()
            if business is not None:
                steps.business_transition(session, pk, Event.STUF_RETRY, now=now, reason=reason)
        return job_pk

    def transition(
        self, pk: int, event: Event, reason: str | None = None, error_code: str | None = None
    ) -> Step:
        """Apply a lifecycle ``event`` to message ``pk`` in a transaction of its own."""
        with self.db.session() as session:
            return steps.transition(session, pk, event, now=self.clock.now(), reason=reason, code=error_code)

    def business_transition(
        self,
        pk: int,
        event: Event,
        reason: str | None = None,
        code: str | None = None,
        ref_pk: int | None = None,
    ) -> Step:
        """Apply a business-layer ``event`` to message ``pk`` in a transaction of its own."""
        with self.db.session() as session:
            return steps.business_transition(
                session, pk, event, now=self.clock.now(), reason=reason, code=code, ref_pk=ref_pk
            )

    def history(self, pk: int) -> builtins.list[steps.HistoryEntry]:
        """The message's lifecycle steps, oldest first."""
        with self.db.session() as session:
            return steps.history(session, pk)

    def purge(self, before: datetime) -> int:
        """Forget inbound messages created before ``before`` that need nothing more; returns how many.

        The caller computes the horizon: MessageIds must be kept at least
        max((1 + Retries) × RetryInterval, PersistDuration) + margin (ebMS 2.0 §6.5.3), or a late
        retry would be delivered twice. Only final states without unfinished jobs go, together
        with the finished signals that answered them; parts, jobs and attempts follow by cascade.
        """
        busy = sa.exists().where(
            job.c.message_pk == message_table.c.pk, job.c.status.in_(UNFINISHED_JOB_STATUSES)
        )
        # A message kept for Ophalen lives by the mailbox's own retention (store/ophalen.py).
        in_mailbox = sa.exists().where(mailbox_item.c.message_pk == message_table.c.pk)
        inbound = sa.and_(
            message_table.c.direction == "in",
            message_table.c.status.in_(sorted(lifecycle.FINAL_RECEIVE)),
            message_table.c.created_at < before,
            ~busy,
            ~in_mailbox,
        )
        answered_ids = sa.select(message_table.c.message_id).where(inbound).scalar_subquery()
        with self.db.session() as session:
            session.execute(
                sa.delete(message_table).where(
                    message_table.c.direction == "out",
                    message_table.c.kind.in_(SIGNAL_KINDS),
                    message_table.c.status.in_(sorted(lifecycle.FINAL_SIGNAL)),
                    message_table.c.ref_to_message_id.in_(answered_ids),
                    ~busy,
                )
            )
            result = session.execute(sa.delete(message_table).where(inbound))
            purged: int = result.rowcount  # type: ignore[attr-defined]
        return purged

    # --- reading ----------------------------------------------------------------------------------

    def find(self, direction: str, message_id: str) -> StoredMessage | None:
        with self.db.session() as session:
            row = session.execute(sa.select(message_table).where(_by_id(direction, message_id))).first()
            return None if row is None else _row_to_message(row)

    def get(self, pk: int) -> StoredMessage:
        with self.db.session() as session:
            row = session.execute(sa.select(message_table).where(message_table.c.pk == pk)).first()
        if row is None:
            raise StoreError(f"no message with pk {pk}")
        return _row_to_message(row)

    def get_many(self, pks: Collection[int]) -> dict[int, StoredMessage]:
        """``get`` for several messages in one query (the send worker's claimed group); a pk
        that names no message is left out."""
        if not pks:
            return {}
        with self.db.session() as session:
            rows = session.execute(sa.select(message_table).where(message_table.c.pk.in_(sorted(pks)))).all()
        return {row.pk: _row_to_message(row) for row in rows}

    def kept_rows(
        self, news: Sequence[NewMessage], now: datetime
    ) -> tuple[builtins.list[dict[str, Any]], builtins.list[RowSet]]:
        """The message rows and first history rows ``keep_received_in`` would write for received
        signals, for a statement that writes them itself (store/finish_pg.py); each history row
        names its message by (direction, MessageId)."""
        for new in news:
            _check(new, "in")
        rows = [_message_row(new, now) for new in news]
        events = [RowSet(new.direction, new.message_id, _creation_event(0, new, now)) for new in news]
        return rows, events

    def keep_received_in(self, session: Session, news: Sequence[NewMessage]) -> builtins.list[int | None]:
        """Store received signals inside the caller's transaction, as ``receive`` with no parts,
        answer or jobs would; per message its pk, or None when its MessageId was kept before
        (a replayed signal).

        One executemany INSERT in a SAVEPOINT, the keys read back by MessageId, the history rows
        in one more executemany; when a duplicate stops it, each message again in a SAVEPOINT of
        its own, so a duplicate undoes only itself: the send worker keeps the synchronous
        Acknowledgments of a group of attempts in the group's one transaction.
        """
        for new in news:
            _check(new, "in")
        if not news:
            return []
        now = self.clock.now()
        events: builtins.list[dict[str, Any]] = []
        try:
            with session.begin_nested():
                pks: builtins.list[int | None] = list(self._insert_rows(session, news, now, events))
                steps.insert_events(session, events)
            return pks
        except _Conflict:
            pass
        pks = []
        for new in news:
            events = []
            try:
                with session.begin_nested():
                    pks.append(self._insert(session, new, now, events))
                    steps.insert_events(session, events)
            except _Conflict:
                pks.append(None)
        return pks

    def parts(self, pk: int) -> builtins.list[StoredPart]:
        """The MIME parts of a message in their original order.

        A part over ``PART_SLICE`` bytes is read in slices of that size into one buffer
        (large_parts.py): fetched whole, PostgreSQL sends a bytea as hex text, so a 25 MB StUF
        envelope took 50 MB in the driver's buffer, 25 MB decoded and 25 MB more as the part.
        """
        return self.parts_of([pk])[pk]

    def parts_of(self, pks: Collection[int]) -> dict[int, builtins.list[StoredPart]]:
        """``parts`` of several messages in one query (the send worker's group); every pk asked
        for is in the answer, with no parts if it has none."""
        found: dict[int, builtins.list[StoredPart]] = {pk: [] for pk in pks}
        if not found:
            return found
        with self.db.session() as session:
            small = sa.case((message_part.c.size <= PART_SLICE, message_part.c.data), else_=sa.null())
            columns = [c for c in message_part.c if c.name != "data"]
            rows = session.execute(
                sa.select(*columns, small.label("data"))
                .where(message_part.c.message_pk.in_(sorted(found)))
                .order_by(message_part.c.message_pk, message_part.c.seq)
            ).all()
            for row in rows:
                p = _row_to_part(cast(sa.Row[Any], row))
                if p.size > PART_SLICE:
                    p = dataclasses.replace(p, data=read_part_data(session, p.pk, p.size))
                found[p.message_pk].append(p)
        return found

    def part_contents(self, pk: int) -> builtins.list[bytes | SpooledRange]:
        """The contents of a message's parts in their order, a large one (over ``PART_SLICE``)
        read in slices into a temporary file (large_parts.py) instead of into memory: what the
        delivery worker parses slice by slice (docs/performance.md "Memory")."""
        with self.db.session() as session:
            small = sa.case((message_part.c.size <= PART_SLICE, message_part.c.data), else_=sa.null())
            rows = session.execute(
                sa.select(message_part.c.pk, message_part.c.size, small.label("data"))
                .where(message_part.c.message_pk == pk)
                .order_by(message_part.c.seq)
            ).all()
            return [
                read_part_spooled(session, row.pk, row.size)
                if is_large(row.size)
                else (b"" if row.data is None else bytes(row.data))
                for row in rows
            ]

    def response_to(self, message_id: str, kinds: Collection[str]) -> StoredMessage | None:
        """The signal of one of ``kinds`` we stored in answer to inbound ``message_id``.

        For duplicates (ebMS 2.0 §6.5.3): the stored Acknowledgment/MessageError is replayed
        unchanged, same MessageId and Timestamp.
        """
        with self.db.session() as session:
            row = session.execute(
                sa.select(message_table)
                .where(
                    message_table.c.direction == "out",
                    message_table.c.ref_to_message_id == message_id,
                    message_table.c.kind.in_(list(kinds)),
                )
                .order_by(message_table.c.pk)
                .limit(1)
            ).first()
            return None if row is None else _row_to_message(row)

    def list_related(self, message_id: str) -> builtins.list[StoredMessage]:
        """Messages that refer to ``message_id`` (RefToMessageId), either direction, oldest first:
        the Acknowledgment, MessageError, Pong or StatusResponse about it. Envelopes left out."""
        query = (
            sa.select(*_WITHOUT_ENVELOPE)
            .where(message_table.c.ref_to_message_id == message_id)
            .order_by(message_table.c.pk)
        )
        with self.db.session() as session:
            return [_row_to_message(row) for row in session.execute(query).all()]

    def status_of(self, message_id: str) -> str | None:
        """Status of a received message for a StatusRequest (ebMS 2.0 §7-§8); None: not recognised."""
        with self.db.session() as session:
            return session.execute(
                sa.select(message_table.c.status).where(_by_id("in", message_id))
            ).scalar_one_or_none()

    def _filtered(
        self,
        query: sa.Select[Any],
        direction: str | None,
        status: str | None,
        kind: str | None,
        cpa_id: str | None,
    ) -> sa.Select[Any]:
        if status is not None:
            # Either layer: "Delivered" finds the ebMS status, "refused" the business status.
            query = query.where(
                sa.or_(message_table.c.status == status, message_table.c.business_status == status)
            )
        for column, value in (
            (message_table.c.direction, direction),
            (message_table.c.kind, kind),
            (message_table.c.cpa_id, cpa_id),
        ):
            if value is not None:
                query = query.where(column == value)
        return query

    def list(
        self,
        direction: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        cpa_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        include_envelope: bool = False,
    ) -> builtins.list[StoredMessage]:
        """Messages, newest first. Envelopes are left out (None) unless asked for: a listing of
        fifty 25 MB messages should not read 1 GB."""
        columns = tuple(message_table.c) if include_envelope else _WITHOUT_ENVELOPE
        query = self._filtered(sa.select(*columns), direction, status, kind, cpa_id)
        query = query.order_by(message_table.c.pk.desc()).limit(limit).offset(offset)
        with self.db.session() as session:
            return [_row_to_message(row) for row in session.execute(query).all()]

    def count(
        self,
        direction: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        cpa_id: str | None = None,
    ) -> int:
        """How many messages ``list`` with the same filters would page through."""
        query = self._filtered(
            sa.select(sa.func.count()).select_from(message_table), direction, status, kind, cpa_id
        )
        with self.db.session() as session:
            total: int = session.execute(query).scalar_one()
        return total
