"""The send worker's outcomes (and attempt starts) for a group of jobs in ONE PostgreSQL statement.

``SendStore.finish`` writes, for every attempt of the group, the synchronous Acknowledgment or
MessageError to keep, the attempt, the message's lifecycle step with its history row and the
job's end. Statement by statement (``jobs.finish_many``) that was a dozen round trips, each an
executemany, and the largest share of the sending process's CPU (docs/performance.md
"Outcomes in one statement"). Here it is the decision's one SELECT (``store.lifecycle
.decide_batch``), then one statement of data-modifying CTEs, in the caller's transaction:

- ``k``: the kept signals, ``ON CONFLICT DO NOTHING``: a signal kept before (a replayed
  Acknowledgment) is skipped, as ``MessageStore.keep_received_in`` skips it; ``ke`` their first
  history rows, only for the rows ``k`` inserted.
- ``a``: the attempts.
- ``u``: each decided step that writes, guarded as ``transition_batch`` guards it: the UPDATE
  matches only while the message still has the status the step was decided on (``step.source``)
  and returns the keys it matched. ``ue``: the history rows, a guarded step's only if ``u``
  matched its message.
- ``j``: the jobs' ends; the job of a guarded step only if ``u`` matched its message.

A message the guard missed was moved by another transaction in between (an asynchronous
Acknowledgment, ebMS 2.0 §6.3): after the statement it goes through ``store.lifecycle``'s
one-message transition, which reads it again and decides anew, and its job is ended by what that
step says (``jobs.settled``). All in the caller's one transaction: the outcome is stored whole or
not at all.

``steps_at_once`` is the same decision, ``u`` and ``ue`` alone: the group's attempt start
(``SendStore.start``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ggk_ebms.lifecycle import Step
from ggk_ebms.store import lifecycle as steps
from ggk_ebms.store.jobs import NewAttempt, Outcome, check_attempts, settled
from ggk_ebms.store.pg_statement import Placeholders, Statement, execute_raw, quoted, values_list
from ggk_ebms.store.receive_pg import RowSet, insert_keyed
from ggk_ebms.store.tables import attempt, job, message, message_event

_ATTEMPT_COLUMNS = ("message_pk", "job_pk", "started_at", "finished_at", "outcome", "http_status", "error")
_EVENT_COLUMNS = ("message_pk", "at", "layer", "event", "from_status", "to_status", "reason", "code", "rule")
# The columns a step writes, and the status its guard reads, per lifecycle layer (the
# ``plain_values`` of store/lifecycle.py).
_STEP_COLUMNS = {
    "ebms": ("status", "status_reason", "error_code"),
    "business": ("business_status", "business_code", "business_reason", "business_ref_pk"),
}
_GUARD = {"ebms": "status", "business": "business_status"}


@functools.lru_cache(maxsize=256)
def _statement(
    keep_columns: tuple[str, ...],
    keeps: int,
    attempts: int,
    updates: int,
    events: int,
    jobs: int,
    dialect: sa.Dialect,
    layer: str = "ebms",
) -> Statement:
    """The statement for one shape (how many rows of each kind), built once per shape."""
    # Every identifier is a name from the table metadata; every value is a bound parameter.
    params = Placeholders()
    # Only a statement that uses it may bind it: PostgreSQL refuses a parameter it has no place for.
    now = params.typed(job, "updated_at", "now") if updates or jobs else ""
    ctes = []
    if keeps:
        rows = [[params.add(f"k{i}_{c}", message.c[c].type) for c in keep_columns] for i in range(keeps)]
        ctes.append(
            f"k AS (INSERT INTO {quoted(message.name)} ({', '.join(map(quoted, keep_columns))}) "
            f"{values_list(rows)} ON CONFLICT DO NOTHING RETURNING pk, direction, message_id)"
        )
        ctes.append(insert_keyed("ke", message_event, "k", keeps, _EVENT_COLUMNS[1:], params))
    if attempts:
        rows = [
            [params.add(f"a{i}_{c}", attempt.c[c].type) for c in _ATTEMPT_COLUMNS] for i in range(attempts)
        ]
        ctes.append(
            f"a AS (INSERT INTO {quoted(attempt.name)} ({', '.join(map(quoted, _ATTEMPT_COLUMNS))}) "
            f"{values_list(rows)})"
        )
    matched = "SELECT pk FROM u" if updates else "SELECT NULL::BIGINT WHERE FALSE"
    if updates:
        step_columns, guard = _STEP_COLUMNS[layer], _GUARD[layer]
        rows = [
            [
                params.typed(message, "pk", f"u{i}_pk"),
                params.typed(message, guard, f"u{i}_expected"),
                *(params.typed(message, c, f"u{i}_{c}") for c in step_columns),
            ]
            for i in range(updates)
        ]
        # The business status starts out NULL (store/lifecycle.py ``business_transition``).
        equals = "=" if layer == "ebms" else "IS NOT DISTINCT FROM"
        ctes.append(
            f"u AS (UPDATE {quoted(message.name)} SET "  # noqa: S608
            + ", ".join(f"{quoted(c)} = uv.{quoted(c)}" for c in step_columns)
            + f", updated_at = {now} FROM ({values_list(rows)}) AS uv(pk, expected, "
            + ", ".join(map(quoted, step_columns))
            + f") WHERE {quoted(message.name)}.pk = uv.pk "
            f"AND {quoted(message.name)}.{quoted(guard)} {equals} uv.expected "
            f"RETURNING {quoted(message.name)}.pk)"
        )
    if events:
        rows = [
            [
                *(params.typed(message_event, c, f"e{i}_{c}") for c in _EVENT_COLUMNS),
                params.cast(f"e{i}_guarded", sa.Boolean()),
            ]
            for i in range(events)
        ]
        columns = ", ".join(map(quoted, _EVENT_COLUMNS))
        ctes.append(
            f"ue AS (INSERT INTO {quoted(message_event.name)} ({columns}) "  # noqa: S608
            f"SELECT {', '.join(f'ev.{quoted(c)}' for c in _EVENT_COLUMNS)} "
            f"FROM ({values_list(rows)}) AS ev({columns}, guarded) "
            f"WHERE NOT ev.guarded OR ev.message_pk IN ({matched}))"
        )
    if jobs:
        rows = [
            [
                params.typed(job, "pk", f"j{i}_pk"),
                params.cast(f"j{i}_waits_for", sa.BigInteger()),
                params.typed(job, "status", f"j{i}_status"),
                params.typed(job, "due_at", f"j{i}_due_at"),
                params.typed(job, "last_error", f"j{i}_last_error"),
                params.cast(f"j{i}_release", sa.Boolean()),
            ]
            for i in range(jobs)
        ]
        table = quoted(job.name)
        ctes.append(
            f"j AS (UPDATE {table} SET status = jv.status, last_error = jv.last_error, "  # noqa: S608
            f"due_at = COALESCE(jv.due_at, {table}.due_at), "
            f"claimed_by = CASE WHEN jv.release THEN NULL ELSE {table}.claimed_by END, "
            f"claimed_at = CASE WHEN jv.release THEN NULL ELSE {table}.claimed_at END, "
            f"updated_at = {now} "
            f"FROM ({values_list(rows)}) AS jv(pk, waits_for, status, due_at, last_error, release) "
            f"WHERE {table}.pk = jv.pk AND (jv.waits_for IS NULL OR jv.waits_for IN ({matched})))"
        )
    return params.statement(f"WITH {', '.join(ctes)} {matched}", dialect)


class _Written:
    """The parameters of the decided steps (``u``) and their history rows (``ue``), counted."""

    def __init__(self, params: dict[str, Any], now: datetime, layer: str = "ebms") -> None:
        self.params = params
        self.now = now
        self.layer = layer
        self.guarded: set[int] = set()  # the messages whose step is a guarded UPDATE
        self.updates = 0
        self.events = 0

    def step(self, change: steps.BusinessChange, step: Step) -> None:
        params, e = self.params, self.events
        row = steps.event_row(change.message_pk, step, self.layer, self.now, change.reason, change.code)
        for column in _EVENT_COLUMNS:
            params[f"e{e}_{column}"] = row[column]
        params[f"e{e}_guarded"] = step.writes
        self.events += 1
        if step.writes:
            u = self.updates
            self.guarded.add(change.message_pk)
            params[f"u{u}_pk"] = change.message_pk
            params[f"u{u}_expected"] = step.source
            values = dict(steps.plain_values(change, step, self.layer))
            for column in _STEP_COLUMNS[self.layer]:
                params[f"u{u}_{column}"] = values[column]
            self.updates += 1


def steps_at_once(
    session: Session,
    changes: Sequence[steps.Change | steps.BusinessChange],
    *,
    now: datetime,
    layer: str = "ebms",
) -> list[Step]:
    """``store.lifecycle.transition_batch`` for changes that name distinct messages and keep no
    Fo01 (``BusinessChange.fout``): the decision's SELECT, then the guarded UPDATE and the
    history rows in one statement (the send worker's ATTEMPT_STARTED for its group, the delivery
    worker's business steps). A message the guard missed is decided anew."""
    if not changes:
        return []
    business = [
        c
        if isinstance(c, steps.BusinessChange)
        else steps.BusinessChange(c.message_pk, c.event, c.reason, c.code)
        for c in changes
    ]
    if any(change.fout is not None for change in business):
        raise ValueError("a step that keeps a Fo01 goes through store.lifecycle.transition_batch")
    decided = steps.decide_batch(session, business, layer=layer)
    written = _Written({"now": now}, now, layer)
    for change, step in decided:
        written.step(change, step)
    connection = session.connection()
    statement = _statement((), 0, 0, written.updates, written.events, 0, connection.dialect, layer)
    moved = written.guarded - {row.pk for row in execute_raw(connection, statement, written.params)}
    return [
        _again(session, change, now, layer) if change.message_pk in moved else step
        for change, step in decided
    ]


def _again(session: Session, change: steps.BusinessChange, now: datetime, layer: str) -> Step:
    """A step whose message another transaction moved: decided anew on the status it has now."""
    if layer == "business":
        return steps.apply_business(session, change, now=now)
    return steps.transition(
        session, change.message_pk, change.event, now=now, reason=change.reason, code=change.code
    )


def _job_params(params: dict[str, Any], i: int, outcome: Outcome, step: Step | None, waits: bool) -> None:
    values = settled(outcome.values(), step)
    params[f"j{i}_pk"] = outcome.job_pk
    params[f"j{i}_waits_for"] = outcome.message_pk if waits else None
    params[f"j{i}_status"] = values["status"]
    params[f"j{i}_due_at"] = values.get("due_at")
    params[f"j{i}_last_error"] = values["last_error"]
    params[f"j{i}_release"] = "claimed_by" in values


def finish_at_once(
    session: Session,
    outcomes: Sequence[Outcome],
    attempts: Sequence[NewAttempt],
    keep_rows: Sequence[Mapping[str, Any]],
    keep_events: Sequence[RowSet],
    *,
    now: datetime,
) -> list[Step | None]:
    """``jobs.finish_many`` with the kept signals (``MessageStore.kept_rows``), in one statement
    after the decision's SELECT; the steps in order. The outcomes name distinct messages."""
    check_attempts(attempts)
    changes = [
        steps.BusinessChange(o.message_pk, o.event, o.reason, o.error_code)
        for o in outcomes
        if o.event is not None
    ]
    decided = iter(steps.decide_batch(session, changes, layer="ebms") if changes else [])
    params: dict[str, Any] = {"now": now}
    keep_columns = tuple(keep_rows[0]) if keep_rows else ()
    for i, row in enumerate(keep_rows):
        for column in keep_columns:
            params[f"k{i}_{column}"] = row[column]
    for i, rowset in enumerate(keep_events):
        params[f"ke{i}_direction"] = rowset.direction
        params[f"ke{i}_message_id"] = rowset.message_id
        for column in _EVENT_COLUMNS[1:]:
            params[f"ke{i}_{column}"] = rowset.values[column]
    for i, new in enumerate(attempts):
        for column in _ATTEMPT_COLUMNS:
            params[f"a{i}_{column}"] = getattr(new, column)
    taken: list[Step | None] = []
    written = _Written(params, now)
    for i, outcome in enumerate(outcomes):
        step = None
        if outcome.event is not None:
            change, step = next(decided)
            written.step(change, step)
        taken.append(step)
        _job_params(params, i, outcome, step, outcome.message_pk in written.guarded)
    statement = _statement(
        keep_columns,
        len(keep_rows),
        len(attempts),
        written.updates,
        written.events,
        len(outcomes),
        session.connection().dialect,
    )
    matched = {row.pk for row in execute_raw(session.connection(), statement, params)}
    moved = written.guarded - matched
    if moved:
        taken = _decide_again(session, outcomes, taken, moved, now)
    return taken


def _decide_again(
    session: Session, outcomes: Sequence[Outcome], taken: list[Step | None], moved: set[int], now: datetime
) -> list[Step | None]:
    """The outcomes whose message another transaction moved: their step applied anew on the
    status it has now (``store.lifecycle.transition``), their job ended by that step."""
    result = list(taken)
    for i, outcome in enumerate(outcomes):
        if outcome.message_pk not in moved or outcome.event is None:
            continue
        change = steps.BusinessChange(outcome.message_pk, outcome.event, outcome.reason, outcome.error_code)
        step = _again(session, change, now, "ebms")
        result[i] = step
        session.execute(
            sa.update(job)
            .where(job.c.pk == outcome.job_pk)
            .values(**settled(outcome.values(), step), updated_at=now)
        )
    return result
