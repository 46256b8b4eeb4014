"""The one writer of message status: lifecycle steps applied with guarded updates, with history.

``ggk_ebms.lifecycle`` decides; this module carries the decision out inside the caller's
transaction. The update is guarded (``UPDATE ... WHERE status = :expected``): when another
transaction changed the status between our read and our write (an asynchronous Acknowledgment
committed while the send worker was busy), no row matches, the current status is read again and
the step decided anew, so a final state is never overwritten by a stale decision. Every step,
including an ignored one, appends a row to ``message_event``: the message's history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms import lifecycle
from ggk_ebms.errors import StoreError
from ggk_ebms.lifecycle import Event, Step
from ggk_ebms.store.among import among
from ggk_ebms.store.tables import message, message_event, stuf_message

# A guard can only miss when another transaction moved the message in between; each retry reads
# the newer status. More misses than this in one call means something rewrites it in a loop.
_GUARD_TRIES: Final = 5
_REASON_MAX: Final = 2000

_INSERT_EVENT = sa.insert(message_event)


@dataclass(frozen=True)
class HistoryEntry:
    """One row of a message's history."""

    at: datetime
    layer: str
    event: str
    from_status: str | None
    to_status: str
    reason: str | None
    code: str | None
    rule: str


@dataclass(frozen=True)
class BusinessChange:
    """A business-layer step to apply with a delivery outcome, in the same transaction.

    ``fout`` (code, omschrijving) is kept on the message's StUF record too: what a Fo01 we
    received says about it (StUF 03.01 Fo01 body).
    """

    message_pk: int
    event: Event
    reason: str | None = None
    code: str | None = None
    ref_pk: int | None = None
    fout: tuple[str, str] | None = None


def apply_business(session: Session, change: BusinessChange, *, now: datetime) -> Step:
    step = business_transition(
        session,
        change.message_pk,
        change.event,
        now=now,
        reason=change.reason,
        code=change.code,
        ref_pk=change.ref_pk,
    )
    if change.fout is not None and step.writes:
        code, omschrijving = change.fout
        session.execute(
            sa.update(stuf_message)
            .where(stuf_message.c.message_pk == change.message_pk)
            .values(fout_code=code[:16], fout_omschrijving=omschrijving[:255], updated_at=now)
        )
    return step


def event_row(
    message_pk: int, step: Step, layer: str, now: datetime, reason: str | None, code: str | None
) -> dict[str, Any]:
    return {
        "message_pk": message_pk,
        "at": now,
        "layer": layer,
        "event": step.event.value,
        "from_status": step.source,
        "to_status": step.target,
        "reason": None if reason is None else reason[:_REASON_MAX],
        "code": code,
        "rule": step.rule.cite[:255],
    }


def creation_row(
    message_pk: int,
    *,
    direction: str,
    kind: str,
    status: str,
    now: datetime,
    reason: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """The first history entry of a message stored with ``status``, for ``insert_events``.

    Raises ``IllegalTransition`` when no event may create a message of that flow in that status.
    """
    step = lifecycle.creation_step(lifecycle.flow_of(direction, kind), status)
    return event_row(message_pk, step, "ebms", now, reason, code)


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Append history entries in one statement (the receive hot path stores two at once)."""
    if rows:
        session.execute(_INSERT_EVENT, rows)


def transition(
    session: Session,
    message_pk: int,
    event: Event,
    *,
    now: datetime,
    reason: str | None = None,
    code: str | None = None,
) -> Step:
    """Apply ``event`` to the ebMS-layer status of a stored message; returns the step taken.

    ``reason`` and ``code`` replace the message's status reason and error code when the status
    is written. Raises ``IllegalTransition`` for an event the table refuses in the current status.
    """
    for _ in range(_GUARD_TRIES):
        row = session.execute(
            sa.select(message.c.direction, message.c.kind, message.c.status).where(message.c.pk == message_pk)
        ).first()
        if row is None:
            raise StoreError(f"no message with pk {message_pk}")
        step = lifecycle.decide(lifecycle.flow_of(row.direction, row.kind), row.status, event)
        if step.writes:
            result = session.execute(
                sa.update(message)
                .where(message.c.pk == message_pk, message.c.status == row.status)
                .values(
                    status=step.target,
                    status_reason=None if reason is None else reason[:_REASON_MAX],
                    error_code=code,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue  # moved under us: decide again on the newer status
        session.execute(_INSERT_EVENT, event_row(message_pk, step, "ebms", now, reason, code))
        return step
    raise StoreError(f"message {message_pk}: status kept changing, {event} not applied")


@dataclass(frozen=True)
class Change:
    """One ebMS-layer step for ``transition_many``: ``event`` on message ``message_pk``."""

    message_pk: int
    event: Event
    reason: str | None = None
    code: str | None = None


def transition_many(session: Session, changes: Sequence[Change], *, now: datetime) -> list[Step]:
    """``transition`` for several messages in the caller's transaction; steps in input order.

    The send worker starts and finishes its attempts in groups (docs/sending.md "Pipelining");
    the statements, the guard and the fall-back for a message moved under us are those of
    ``transition_batch`` on the ebMS layer, so a final state is never overwritten here either.
    """
    return transition_batch(
        session,
        [BusinessChange(c.message_pk, c.event, c.reason, c.code) for c in changes],
        now=now,
        layer="ebms",
    )


def business_transition(
    session: Session,
    message_pk: int,
    event: Event,
    *,
    now: datetime,
    reason: str | None = None,
    code: str | None = None,
    ref_pk: int | None = None,
) -> Step:
    """Apply ``event`` to the business-layer status of a StUF message, guarded the same way.

    ``ref_pk`` names the message that decided the step (the Fo01 received, the retour).
    """
    for _ in range(_GUARD_TRIES):
        row = session.execute(
            sa.select(message.c.direction, message.c.business_status).where(message.c.pk == message_pk)
        ).first()
        if row is None:
            raise StoreError(f"no message with pk {message_pk}")
        step = lifecycle.decide(lifecycle.business_flow(row.direction), row.business_status, event)
        if step.writes:
            guard = (
                message.c.business_status.is_(None)
                if row.business_status is None
                else message.c.business_status == row.business_status
            )
            result = session.execute(
                sa.update(message)
                .where(message.c.pk == message_pk, guard)
                .values(
                    business_status=step.target,
                    business_code=code,
                    business_reason=None if reason is None else reason[:_REASON_MAX],
                    business_ref_pk=ref_pk,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue
        session.execute(_INSERT_EVENT, event_row(message_pk, step, "business", now, reason, code))
        return step
    raise StoreError(f"message {message_pk}: business status kept changing, {event} not applied")


def history(session: Session, message_pk: int) -> list[HistoryEntry]:
    """Every step of a message, oldest first."""
    rows = session.execute(
        sa.select(message_event).where(message_event.c.message_pk == message_pk).order_by(message_event.c.pk)
    ).all()
    return [
        HistoryEntry(
            at=r.at,
            layer=r.layer,
            event=r.event,
            from_status=r.from_status,
            to_status=r.to_status,
            reason=r.reason,
            code=r.code,
            rule=r.rule,
        )
        for r in rows
    ]


def decide_batch(
    session: Session, changes: Sequence[BusinessChange], *, layer: str
) -> list[tuple[BusinessChange, Step]]:
    """The step each change would take on its message's current status, read in one SELECT;
    nothing is written. The changes name distinct messages. Whoever writes a decided step must
    guard it with the status it was decided on (``step.source``), as ``transition_batch`` does."""
    if layer not in ("ebms", "business"):
        raise ValueError(f"unknown layer {layer!r}")
    column = message.c.status if layer == "ebms" else message.c.business_status
    pks = [change.message_pk for change in changes]
    rows = {
        row.pk: row
        for row in session.execute(
            sa.select(message.c.pk, message.c.direction, message.c.kind, column.label("current")).where(
                among(session, message.c.pk, pks)
            )
        )
    }
    decided: list[tuple[BusinessChange, Step]] = []
    for change in changes:
        row = rows.get(change.message_pk)
        if row is None:
            raise StoreError(f"no message with pk {change.message_pk}")
        flow = (
            lifecycle.flow_of(row.direction, row.kind)
            if layer == "ebms"
            else lifecycle.business_flow(row.direction)
        )
        decided.append((change, lifecycle.decide(flow, row.current, change.event)))
    return decided


def transition_batch(
    session: Session, changes: Sequence[BusinessChange], *, now: datetime, layer: str
) -> list[Step]:
    """Apply one step to each of many messages in a few statements; the steps, in order.

    ``layer`` is "ebms" (``transition``) or "business" (``business_transition``). The decision and
    the guard are theirs: one SELECT reads the current statuses, ``lifecycle.decide`` decides each
    step, one ``UPDATE ... WHERE pk IN (...) AND status = :expected RETURNING pk`` per current
    status writes them (the new values per message through CASE), and one INSERT keeps the
    history rows. A message the guarded UPDATE did not match was moved by another transaction in
    between: it goes through the one-message function, which reads it again and decides anew.
    Changes that name one message twice are applied one by one, in order (each step must see the
    one before). For the delivery worker's batches (docs/delivery.md "Batches").
    """
    if layer not in ("ebms", "business"):
        raise ValueError(f"unknown layer {layer!r}")
    pks = [change.message_pk for change in changes]
    if len(set(pks)) != len(pks):
        return [_one(session, change, now, layer) for change in changes]
    if not changes:
        return []
    column = message.c.status if layer == "ebms" else message.c.business_status
    decided = decide_batch(session, changes, layer=layer)
    # One UPDATE per (current status, new values): the send worker's steps mostly share both
    # (every attempt "started", every Acknowledgment "received"), and plain values keep ONE
    # statement text whose compiled form SQLAlchemy caches; only a group whose messages get
    # different values needs the per-message CASE, a new statement per group size.
    by_source: dict[tuple[str | None, tuple[Any, ...] | None], list[tuple[BusinessChange, Step]]] = {}
    for change, step in decided:
        if step.writes:
            by_source.setdefault((step.source, None), []).append((change, step))
    for (source, _), group in list(by_source.items()):
        shared = {plain_values(change, step, layer) for change, step in group}
        if len(shared) == 1:
            by_source[(source, shared.pop())] = by_source.pop((source, None))
    moved: set[int] = set()
    for (source, plain), group in by_source.items():
        wanted = [change.message_pk for change, _ in group]
        guard = column.is_(None) if source is None else column == source
        values = _batch_values(group, layer) if plain is None else dict(plain)
        matched = set(
            session.execute(
                sa.update(message)
                .where(among(session, message.c.pk, wanted), guard)
                .values(**values, updated_at=now)
                .returning(message.c.pk)
            ).scalars()
        )
        moved.update(set(wanted) - matched)
    taken: list[Step] = []
    events: list[dict[str, Any]] = []
    for change, step in decided:
        if change.message_pk in moved:
            taken.append(_one(session, change, now, layer))  # reads the newer status, decides again
            continue
        events.append(event_row(change.message_pk, step, layer, now, change.reason, change.code))
        if layer == "business" and change.fout is not None and step.writes:
            code, omschrijving = change.fout
            session.execute(
                sa.update(stuf_message)
                .where(stuf_message.c.message_pk == change.message_pk)
                .values(fout_code=code[:16], fout_omschrijving=omschrijving[:255], updated_at=now)
            )
        taken.append(step)
    insert_events(session, events)
    return taken


def _one(session: Session, change: BusinessChange, now: datetime, layer: str) -> Step:
    if layer == "business":
        return apply_business(session, change, now=now)
    return transition(
        session, change.message_pk, change.event, now=now, reason=change.reason, code=change.code
    )


def plain_values(change: BusinessChange, step: Step, layer: str) -> tuple[tuple[str, Any], ...]:
    """The new column values of one message, as ``_batch_values`` gives them, hashable."""
    reason = None if change.reason is None else change.reason[:_REASON_MAX]
    if layer == "ebms":
        return (("status", step.target), ("status_reason", reason), ("error_code", change.code))
    return (
        ("business_status", step.target),
        ("business_code", change.code),
        ("business_reason", reason),
        ("business_ref_pk", change.ref_pk),
    )


def _batch_values(group: Sequence[tuple[BusinessChange, Step]], layer: str) -> dict[str, Any]:
    """The new column values of a group of messages, each its own (CASE on the message pk).

    Each CASE is cast to its column's type: a CASE of NULLs alone is text to PostgreSQL.
    """

    def per_message(name: str, value: Callable[[BusinessChange, Step], Any]) -> Any:
        cases = {change.message_pk: value(change, step) for change, step in group}
        return sa.cast(sa.case(cases, value=message.c.pk), message.c[name].type)

    def reason(change: BusinessChange, _: Step) -> str | None:
        return None if change.reason is None else change.reason[:_REASON_MAX]

    if layer == "ebms":
        return {
            "status": per_message("status", lambda _, step: step.target),
            "status_reason": per_message("status_reason", reason),
            "error_code": per_message("error_code", lambda change, _: change.code),
        }
    return {
        "business_status": per_message("business_status", lambda _, step: step.target),
        "business_code": per_message("business_code", lambda change, _: change.code),
        "business_reason": per_message("business_reason", reason),
        "business_ref_pk": per_message("business_ref_pk", lambda change, _: change.ref_pk),
    }
