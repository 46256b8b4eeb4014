"""The send worker's database steps for a group of claimed jobs, one transaction per step.

The worker keeps many messages in flight (docs/sending.md "Pipelining") and groups their
database work (pipeline/batching.py): the messages and their earlier attempts are read in one
go, their attempts started in one transaction, and their outcomes (the attempt, the
synchronous Acknowledgment or MessageError to keep, the job's end and the message's lifecycle
step) written in one transaction: on PostgreSQL as the decision's SELECT and one statement
(store/finish_pg.py), on SQLite statement by statement. Every step is decided by
``store.lifecycle`` and guarded, so an asynchronous Acknowledgment committed meanwhile wins
(ebMS 2.0 §6.3, §6.5.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ggk_ebms.clock import Clock
from ggk_ebms.lifecycle import Event, Step
from ggk_ebms.store import lifecycle as steps
from ggk_ebms.store.db import Database
from ggk_ebms.store.finish_pg import finish_at_once, steps_at_once
from ggk_ebms.store.jobs import Attempt, JobQueue, NewAttempt, Outcome, finish_many
from ggk_ebms.store.messages import MessageStore, NewMessage, StoredMessage


@dataclass(frozen=True)
class Loaded:
    """A claimed job's message with the attempts made for it so far."""

    message: StoredMessage
    attempts: list[Attempt]


@dataclass(frozen=True)
class Finished:
    """Everything one attempt (or decision without one) leaves behind, written together."""

    outcome: Outcome
    attempt: NewAttempt | None = None
    keep: NewMessage | None = None  # a synchronous signal to keep in the message log


class SendStore:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock
        self.messages = MessageStore(database, clock)
        self.jobs = JobQueue(database, clock)

    def load(self, message_pks: Sequence[int]) -> list[Loaded | LookupError]:
        """The messages of ``message_pks`` with their attempts, in order (two queries in all)."""
        found = self.messages.get_many(set(message_pks))
        attempts = self.jobs.attempts_of(found)
        return [
            Loaded(found[pk], attempts[pk]) if pk in found else LookupError(f"no message with pk {pk}")
            for pk in message_pks
        ]

    def start(self, started: Sequence[tuple[int, str]]) -> list[Step]:
        """ATTEMPT_STARTED (status Sending) for each (message pk, reason), in one transaction."""
        changes = [steps.Change(pk, Event.ATTEMPT_STARTED, reason) for pk, reason in started]
        distinct = len({change.message_pk for change in changes}) == len(changes)
        with self.database.session() as session:
            if self.database.backend == "postgresql" and distinct:
                return steps_at_once(session, changes, now=self.clock.now())  # store/finish_pg.py
            return steps.transition_many(session, changes, now=self.clock.now())

    def finish(self, items: Sequence[Finished]) -> list[Step | None]:
        """Keep the signals, record the attempts and end the jobs, all in one transaction."""
        if not items:
            return []
        pks = [item.outcome.message_pk for item in items]
        if self.database.backend == "postgresql" and len(set(pks)) == len(pks):
            # One statement after the decision's SELECT (store/finish_pg.py).
            return self._finish_at_once(items)
        with self.database.session() as session:
            # A signal kept before (a replayed Acknowledgment) is skipped there, not an error.
            self.messages.keep_received_in(session, [item.keep for item in items if item.keep is not None])
            return finish_many(
                session,
                [item.outcome for item in items],
                [item.attempt for item in items if item.attempt is not None],
                now=self.clock.now(),
            )

    def _finish_at_once(self, items: Sequence[Finished]) -> list[Step | None]:
        now = self.clock.now()
        keep_rows, keep_events = self.messages.kept_rows(
            [item.keep for item in items if item.keep is not None], now
        )
        with self.database.session() as session:
            return finish_at_once(
                session,
                [item.outcome for item in items],
                [item.attempt for item in items if item.attempt is not None],
                keep_rows,
                keep_events,
                now=now,
            )
