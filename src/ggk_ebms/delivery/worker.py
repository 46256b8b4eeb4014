"""The delivery worker: claims 'deliver' jobs, unwraps, checks, routes and forwards.

For every received business message the inbound pipeline queued a 'deliver' job in the same
transaction that stored it. This worker claims those jobs (several workers may share the
database: JobQueue claims with SKIP LOCKED), runs the inbound checks of the GGk handleiding
(docs/stuf-routing.md; ``unwrap.unwrap``) and does what the decision says:

- deliver: hand it to the route's target. Success: message Forwarded (Processed for the mailbox
  until fetched). A retryable failure: attempt recorded, job back in the queue with a doubling
  wait (delivery_retry_seconds ... delivery_retry_max_seconds); after delivery_max_attempts, or
  at once when retrying cannot help, the message is parked as Failed with the reason, never lost:
  ``ggk-ebms messages retry ID`` queues it again.
- refuse: Failed with the reason, and a Fo01 to the sender when the code is one we send
  (setting fo01_codes; StUF055 for a payload that fails its XSD).
- quarantine / hold: Failed with the reason and an operator alert (a warning in the log).
- duplicate: Processed, nothing delivered again (same zender, referentienummer and payload).
- Fo01 received: matched on crossRefnummer to the message we sent; code and omschrijving kept
  on it and shown.

It also watches the outbox folder (``submit.scan_outbox``). Logs carry ids, codes and
stuurgegevens, never payload bytes (iStandaarden privacy elements, docs/rules.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery import wakeup
from ggk_ebms.delivery.fo01 import fo01_wanted, queue_fo01
from ggk_ebms.delivery.forwarders.base import Delivery, Forwarded, Forwarder
from ggk_ebms.delivery.forwarders.directory import DirectoryForwarder, FolderSyncs
from ggk_ebms.delivery.forwarders.ebms import EbmsForwarder
from ggk_ebms.delivery.forwarders.http import HttpForwarder
from ggk_ebms.delivery.forwarders.mailbox import MailboxForwarder
from ggk_ebms.delivery.parallel import map_shared
from ggk_ebms.delivery.unwrap import Decision, FoundEnvelope, Verdict, find_envelope, unwrap
from ggk_ebms.errors import ConfigError, GgkEbmsError, StoreError, TransportError
from ggk_ebms.exchanges.rules import Rules
from ggk_ebms.lifecycle import Event
from ggk_ebms.logformat import log_fields
from ggk_ebms.payloads.validate import PayloadSchemas
from ggk_ebms.routing.table import (
    DirectoryTarget,
    EbmsTarget,
    HttpTarget,
    MailboxTarget,
    RoutingTable,
    Target,
)
from ggk_ebms.runtime import Runtime
from ggk_ebms.services.cbs import take_report
from ggk_ebms.spool import SpooledRange
from ggk_ebms.store import delivery_batch
from ggk_ebms.store.claims import ClaimKeeper
from ggk_ebms.store.db import Database
from ggk_ebms.store.exchanges import load_rules
from ggk_ebms.store.jobs import Job, JobQueue
from ggk_ebms.store.lifecycle import BusinessChange
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.messages import MessageStore, StoredMessage
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.store.stuf import (
    StufRecord,
    StufStore,
    received_earlier_in,
    received_first_in,
    sent_among,
    sent_in,
)
from ggk_ebms.stuf.codes import describe
from ggk_ebms.stuf.model import MessageKind, StufMessage

log = logging.getLogger(__name__)
T = TypeVar("T")

# Targets whose forwarders may run side by side within a batch (``DeliveryWorker._forward_all``).
_PARALLEL = (DirectoryTarget, HttpTarget)


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """Doubling wait after try ``attempts`` (1-based), capped by delivery_retry_max_seconds."""
    seconds = settings.delivery_retry_seconds * (2 ** max(0, attempts - 1))
    return timedelta(seconds=min(seconds, settings.delivery_retry_max_seconds))


def _fields(message: StoredMessage, decision: Decision) -> dict[str, str]:
    """The JSON-log fields of a delivery decision (ggk_ebms/logformat.py)."""
    return log_fields(
        message_id=message.message_id,
        cpa_id=message.cpa_id,
        gemeentecode=decision.gemeentecode,
        berichttype=decision.berichttype,
    )


class _BatchHistory:
    """``unwrap.History`` for the messages of one batch.

    The stuurgegevens of a batch are written together after all its messages are decided
    (``delivery_batch.record_stuf``), so a later message of the batch must also see the earlier
    ones: ``pending`` holds them, as the database would have after one-by-one recording
    (docs/stuf-routing.md inbound check 8: a (zender, referentienummer) seen before).

    The questions of the whole batch are asked before its first decision (``ask_ahead``): one
    statement for every (zender, referentienummer) of the batch (check 8) and one for the
    crossRefnummers of its Du01s (check 9, and the message a retour answers), instead of a
    statement per message. The batch's own rows are not in the database yet, so asking early
    gives the answers asking late would. A question the batch did not ask ahead is still asked
    on its own.

    On PostgreSQL the questions of a batch share one read session (``shared``): a session of its
    own cost a pool checkout with its liveness check, BEGIN and COMMIT, five round trips for one
    SELECT. On SQLite every session takes the write lock (BEGIN IMMEDIATE), so there each
    question keeps its own short session and receiving is never held up by it.
    """

    def __init__(self, database: Database, shared: Session | None = None) -> None:
        self.database = database
        self.shared = shared
        self.message_pk = 0
        self.pending: dict[tuple[str, str], tuple[int, str | None]] = {}
        self.asked_pairs: frozenset[tuple[str, str]] = frozenset()
        self.first_received: dict[tuple[str, str], list[tuple[int, str | None]]] = {}
        self.asked_refs: frozenset[str] = frozenset()
        self.sent: dict[str, int] = {}

    def _ask(self, question: Callable[[Session], T]) -> T:
        if self.shared is not None:
            return question(self.shared)
        with self.database.session() as session:
            return question(session)

    def ask_ahead(self, envelopes: Sequence[StufMessage]) -> None:
        """Ask checks 8 and 9 for every envelope of the batch at once."""
        pairs = frozenset(
            (e.stuurgegevens.zender.organisatie, e.stuurgegevens.referentienummer) for e in envelopes
        )
        refs = frozenset(
            e.stuurgegevens.cross_refnummer
            for e in envelopes
            if e.kind is MessageKind.DU01 and e.stuurgegevens.cross_refnummer
        )
        if pairs:
            self.first_received = self._ask(lambda session: received_first_in(session, pairs))
        if refs:
            self.sent = self._ask(lambda session: sent_among(session, refs))
        self.asked_pairs, self.asked_refs = pairs, refs

    def earlier_payload(self, zender: str, referentienummer: str) -> tuple[int, str | None] | None:
        key = (zender, referentienummer)
        if key in self.asked_pairs:
            firsts = self.first_received.get(key, ())
            earlier = next(((pk, sha) for pk, sha in firsts if pk != self.message_pk), None)
        else:
            stored = self._ask(
                lambda session: received_earlier_in(
                    session, zender, referentienummer, not_message_pk=self.message_pk
                )
            )
            earlier = None if stored is None else (stored.message_pk, stored.payload_sha256)
        if earlier is not None:
            return earlier
        pending = self.pending.get(key)
        return None if pending is None or pending[0] == self.message_pk else pending

    def we_sent(self, referentienummer: str) -> bool:
        return self.sent_message(referentienummer) is not None

    def sent_message(self, referentienummer: str) -> int | None:
        """The pk of the last message we sent with this referentienummer."""
        if referentienummer in self.asked_refs:
            return self.sent.get(referentienummer)
        stored = self._ask(lambda session: sent_in(session, referentienummer))
        return None if stored is None else stored.message_pk

    def add(self, record: StufRecord) -> None:
        if record.direction == "in":
            key = (record.zender, record.referentienummer)
            self.pending.setdefault(key, (record.message_pk, record.payload_sha256))


@dataclass(frozen=True)
class _Context:
    """What every message of a batch shares, read once per batch instead of once per message."""

    table: RoutingTable | None
    rules: Rules


@dataclass(frozen=True)
class _Opened:
    """A claimed job, its message, its parts and the StUF envelope ``find_envelope`` found in them
    (or its refusal), before the checks that need the history."""

    job: Job
    message: StoredMessage
    parts: Sequence[bytes | SpooledRange]
    found: FoundEnvelope | Decision


@dataclass(frozen=True)
class _Planned:
    """A claimed job, its message and what unwrap decided for it."""

    job: Job
    message: StoredMessage
    decision: Decision
    answers: int | None = None  # the pk of our message this retour answers


@dataclass(frozen=True)
class _Tried:
    """A delivery handed to its target: what came back (``Forwarded``) or what went wrong."""

    plan: _Planned
    started: datetime
    finished: datetime
    result: Forwarded | TransportError | GgkEbmsError


def _synced(tried: list[_Tried], failed: dict[Path, TransportError]) -> list[_Tried]:
    """``tried`` with every forward into a folder whose fsync failed turned into that failure:
    its rename may not survive a crash, so it is retried, not recorded as delivered."""
    if not failed:
        return tried
    result = []
    for attempt in tried:
        route = attempt.plan.decision.route
        target = route.target if route is not None else None
        if (
            isinstance(attempt.result, Forwarded)
            and isinstance(target, DirectoryTarget)
            and target.path in failed
        ):
            attempt = dataclasses.replace(attempt, result=failed[target.path])
        result.append(attempt)
    return result


class DeliveryWorker:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        clock: Clock,
        ids: IdGenerator,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        # No defaults: a MessageId generator built here from settings.host would ignore
        # message_id_host (Digikoppeling EB013); the composition root hands in the one in force.
        self.clock = clock
        self.ids = ids
        # Unique per worker, not only per host and process: nodes in containers can agree on both,
        # and a claim is renewed under its worker's id (store/claims.py, docs/nodes.md).
        self.worker_id = worker_id or f"deliver-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.messages = MessageStore(database, self.clock)
        self.jobs = JobQueue(database, self.clock)
        self.stufs = StufStore(database, self.clock)
        self.routes = RouteStore(database, self.clock)
        self.mailbox = Mailbox(database, self.clock)
        self.schemas = PayloadSchemas(settings.payload_schemas) if settings.payload_schemas else None
        self._table: tuple[str, RoutingTable] | None = None

    # --- the loop ------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Handle every due 'deliver' job, ``delivery_batch`` at a time; returns how many.

        Each batch is claimed in one statement (store.delivery_batch: SKIP LOCKED on PostgreSQL,
        so nodes sharing a database never take the same job). Claims are a heartbeat lease (store.claims):
        renewed while the batch is handled, so a killed worker's jobs are taken over within
        job_lease_seconds.
        """
        handled = 0
        batch = self.settings.delivery_batch
        lease = timedelta(seconds=self.settings.job_lease_seconds)
        with ClaimKeeper(self.jobs, self.worker_id, lease, self.clock) as keeper:
            while True:
                jobs = delivery_batch.claim_deliveries(
                    self.database, now=self.clock.now(), worker_id=self.worker_id, limit=batch, lease=lease
                )
                keeper.hold(job.pk for job in jobs)
                try:
                    self.handle_batch(jobs)
                finally:
                    for job in jobs:
                        keeper.drop(job.pk)
                handled += len(jobs)
                if len(jobs) < batch:
                    return handled

    def handle(self, job: Job) -> None:
        """Handle one claimed job (a batch of one)."""
        self.handle_batch([job])

    def handle_batch(self, jobs: Sequence[Job]) -> None:
        """Decide, record, deliver and finish a batch of claimed jobs (docs/delivery.md "Batches").

        Reads: the messages and parts in one session, the routing table and exchange rules once.
        Writes: the stuurgegevens of the batch in one transaction, the deliveries' outcomes in
        one transaction (each message's steps in a savepoint of their own only when one of them
        failed, store/delivery_batch.py). Anything that fails for one message (its steps, its
        forwarder) falls back to the one-job path for that message only; the rest goes on.
        """
        if not jobs:
            return
        try:
            loaded = delivery_batch.load(self.database, [job.message_pk for job in jobs])
            context = _Context(self.routing_table_or_none(), load_rules(self.settings, self.database))
        except GgkEbmsError as exc:
            for job in jobs:
                self._put_back(job, exc)
            return
        opened: list[_Opened] = []
        for job in jobs:
            try:
                item = self._open(job, loaded)
            except GgkEbmsError as exc:
                self._put_back(job, exc)
                continue
            if item is not None:
                opened.append(item)
        planned: list[_Planned] = []
        decided = False  # every opened job planned or put back
        try:
            with contextlib.ExitStack() as stack:
                shared = None
                if self.database.backend == "postgresql":
                    shared = stack.enter_context(self.database.session())
                history = _BatchHistory(self.database, shared)
                try:
                    history.ask_ahead(
                        [item.found.stuf for item in opened if isinstance(item.found, FoundEnvelope)]
                    )
                except GgkEbmsError as exc:
                    for item in opened:
                        self._put_back(item.job, exc)
                    return
                for item in opened:
                    try:
                        planned.append(self._plan(item, context, history))
                    except GgkEbmsError as exc:
                        self._put_back(item.job, exc)
                decided = True
        except GgkEbmsError as exc:  # the shared read session failed as it opened or closed
            log.warning("delivery batch: reading history failed (%s); the batch is retried", exc)
            for waiting in [plan.job for plan in planned] if decided else [item.job for item in opened]:
                self._put_back(waiting, exc)
            return
        planned = self._record_batch(planned)
        deliver = [plan for plan in planned if plan.decision.verdict is Verdict.DELIVER]
        for plan in planned:
            if plan.decision.verdict is not Verdict.DELIVER:
                self._guarded(plan.job, self._outcome, plan)
        self._finish_deliveries(self._forward_all(deliver))

    def _put_back(self, job: Job, exc: GgkEbmsError) -> None:
        # The database or a CPA failed under us: try the whole job again later. If the
        # database is gone, the claim is no longer renewed and lapses after the lease.
        log.warning("delivery of message %s interrupted, retrying later: %s", job.message_pk, exc)
        try:
            self.jobs.retry(
                job.pk, due_at=self.clock.now() + retry_delay(self.settings, job.attempts), error=str(exc)
            )
        except GgkEbmsError as again:
            log.warning("delivery job %s not put back (%s); it is taken over after the lease", job.pk, again)

    def _guarded(self, job: Job, work: Callable[..., object], *args: Any) -> None:
        """``work(*args)`` for one job; a database or CPA failure puts that job back only."""
        try:
            work(*args)
        except GgkEbmsError as exc:
            self._put_back(job, exc)

    def routing_table(self) -> RoutingTable | None:
        """The routing table in force, parsed once per imported version."""
        current = self.routes.current()
        if current is None:
            return None
        if self._table is None or self._table[0] != current.sha256:
            self._table = (current.sha256, current.table())
        return self._table[1]

    def routing_table_or_none(self) -> RoutingTable | None:
        try:
            return self.routing_table()
        except ConfigError as exc:  # e.g. the CBS list of a new year no longer has a code
            log.warning("the stored routing table cannot be used: %s", exc)
            return None

    def _open(self, job: Job, loaded: delivery_batch.Loaded) -> _Opened | None:
        """A job of the batch with its message and the StUF envelope found in it; None when it
        was finished here (not ours to route)."""
        message = loaded.messages.get(job.message_pk)
        if message is None:
            raise StoreError(f"no message with pk {job.message_pk}")
        if message.direction != "in" or message.kind != "business":
            self.jobs.complete(job.pk)
            return None
        # A large part comes as a temporary file, parsed slice by slice (docs/performance.md "Memory").
        parts = loaded.parts.get(message.pk, [])
        if take_report(self.settings, self.database, message, parts, self.clock):
            # A CBS Monitor Sociaal Domein report (a PDF, docs/cbs.md): kept in the mailbox for
            # pick-up; the iWmo/iJw checks below would refuse it as no XML payload.
            self.jobs.complete(job.pk, event=Event.KEPT_FOR_PICKUP, reason="CBS rapport kept in the mailbox")
            return None
        return _Opened(job, message, parts, find_envelope(parts))

    def _plan(self, item: _Opened, context: _Context, history: _BatchHistory) -> _Planned:
        """Decide one opened job of the batch."""
        message = item.message
        history.message_pk = message.pk
        decision = unwrap(
            item.parts,
            sender_ids=[message.from_party_id, message.cpa_id],
            table=context.table,
            history=history,
            schemas=self.schemas,
            rules=context.rules,
            found=item.found,
        )
        record = self._stuf_record(message, decision)
        if record is not None:
            history.add(record)
        for warning in decision.warnings:
            log.info("message %s: %s", message.pk, warning)
        return _Planned(item.job, message, decision, self._answers(decision, history))

    def _record_batch(self, planned: list[_Planned]) -> list[_Planned]:
        """Keep the stuurgegevens of the batch (STUF_RECEIVED); returns the plans that go on.

        One transaction for the batch; a message whose steps failed in it is recorded again on
        its own, and put back in the queue when that fails too.
        """
        records = {plan.message.pk: self._stuf_record(plan.message, plan.decision) for plan in planned}
        wanted = [record for record in records.values() if record is not None]
        try:
            failed = set(delivery_batch.record_stuf(self.database, wanted, now=self.clock.now()))
        except GgkEbmsError as exc:
            log.warning("stuurgegevens of a batch of %d not kept at once (%s); one by one", len(wanted), exc)
            failed = {record.message_pk for record in wanted}
        going: list[_Planned] = []
        for plan in planned:
            record = records[plan.message.pk]
            if record is not None and plan.message.pk in failed:
                try:
                    self.stufs.record(record, business=Event.STUF_RECEIVED)
                except GgkEbmsError as exc:
                    self._put_back(plan.job, exc)
                    continue
            going.append(plan)
        return going

    def _outcome(self, plan: _Planned) -> None:
        handler = {
            Verdict.DUPLICATE: self._done,
            Verdict.IGNORE: self._done,
            Verdict.REFUSE: self._refuse,
            Verdict.QUARANTINE: self._park,
            Verdict.HOLD: self._park,
            Verdict.FO01_RECEIVED: self._fo01_received,
        }[plan.decision.verdict]
        handler(plan.job, plan.message, plan.decision)

    def _stuf_record(self, message: StoredMessage, decision: Decision) -> StufRecord | None:
        stuf = decision.stuf
        if stuf is None:
            return None
        sg = stuf.stuurgegevens
        return StufRecord(
            message_pk=message.pk,
            direction="in",
            berichtcode=stuf.kind.value,
            referentienummer=sg.referentienummer[:64],
            zender=sg.zender.organisatie[:200],
            ontvanger=sg.ontvanger.organisatie[:200],
            gemeentecode=decision.gemeentecode,
            berichttype=(stuf.functie or None) and str(stuf.functie)[:32],
            cross_refnummer=(sg.cross_refnummer or None) and str(sg.cross_refnummer)[:64],
            tijdstip_bericht=sg.tijdstip_bericht[:17] if sg.tijdstip_bericht else None,
            bericht_identificatie=decision.info.identificatie if decision.info else None,
            payload_sha256=decision.payload_sha256,
            cross_ref_unknown=decision.cross_ref_unknown,
        )

    # --- outcomes ------------------------------------------------------------------------------

    def _done(self, job: Job, message: StoredMessage, decision: Decision) -> None:
        log.info("message %s: %s", message.pk, decision.reason)
        self.jobs.complete(
            job.pk, event=Event.SETTLED, reason=decision.reason, business=self._bv03(message, decision)
        )

    def _park(self, job: Job, message: StoredMessage, decision: Decision) -> None:
        # Quarantine or hold: nobody to answer, or our own configuration is at fault. An operator
        # must look (the alert), and `messages retry` delivers it once the cause is fixed.
        log.warning(
            "ALERT message %s (%s) not delivered: %s",
            message.pk,
            message.message_id,
            decision.reason,
            extra=_fields(message, decision),
        )
        code = None if decision.verdict is Verdict.QUARANTINE else "IB102"
        held = [BusinessChange(message.pk, Event.STUF_HELD, decision.reason, code)] if decision.stuf else []
        self.jobs.fail(job.pk, decision.reason, event=Event.NOT_DELIVERED, error_code=code, business=held)

    def _refuse(self, job: Job, message: StoredMessage, decision: Decision) -> None:
        reason = decision.reason
        code = decision.fout.code if decision.fout is not None else None
        fo01_pk: int | None = None
        if fo01_wanted(self.settings, decision):
            try:
                fo01 = queue_fo01(
                    self.settings,
                    self.database,
                    received=message,
                    decision=decision,
                    ids=self.ids,
                    clock=self.clock,
                )
                fo01_pk = fo01.pk
                reason += f"; Fo01 {code} queued to the sender as message {fo01.pk}"
            except GgkEbmsError as exc:
                log.warning("ALERT message %s: no Fo01 could be queued: %s", message.pk, exc)
                reason += f"; no Fo01 could be queued: {exc}"
        else:
            log.warning("ALERT message %s refused without Fo01: %s", message.pk, reason)
        log.info("message %s refused: %s", message.pk, reason, extra=_fields(message, decision))
        refused = (
            [BusinessChange(message.pk, Event.STUF_REFUSED, reason, code, ref_pk=fo01_pk)]
            if decision.stuf is not None
            else []
        )
        self.jobs.fail(job.pk, reason, event=Event.NOT_DELIVERED, error_code=code, business=refused)

    def _fo01_received(self, job: Job, message: StoredMessage, decision: Decision) -> None:
        stuf = decision.stuf
        assert stuf is not None  # a Fo01 decision carries the parsed message…
        assert stuf.fout is not None  # …and parse_envelope always reads a Fo01 body
        fout, cross_ref = stuf.fout, stuf.stuurgegevens.cross_refnummer or ""
        sent = self.stufs.sent(cross_ref) if cross_ref else None
        text = f"Fo01 {describe(fout.code)}: {fout.omschrijving}"
        changes: list[BusinessChange] = []
        if sent is None:
            reason = f"{text}; crossRefnummer {cross_ref or '(none)'} matches no message we sent"
            log.warning("ALERT message %s: %s", message.pk, reason)
        else:
            about = f"{sent.berichttype or sent.berichtcode}, referentienummer {cross_ref}"
            reason = f"{text}; about our message {sent.message_pk} ({about})"
            log.warning("message %s: %s", message.pk, reason)
            # StUF 03.01: a Fo01 names the message it refuses by crossRefnummer; ours becomes
            # refused with the code, in the same transaction that settles the Fo01 itself.
            changes.append(
                BusinessChange(
                    sent.message_pk,
                    Event.STUF_REFUSED,
                    f"Fo01 received as message {message.pk}: {text}",
                    fout.code,
                    ref_pk=message.pk,
                    fout=(fout.code, fout.omschrijving),
                )
            )
        self.jobs.complete(job.pk, event=Event.SETTLED, reason=reason[:2000], business=changes)

    def _delivery(self, plan: _Planned) -> Delivery:
        decision, message = plan.decision, plan.message
        route, stuf = decision.route, decision.stuf
        # A DELIVER decision always carries route, message, payload and envelope (unwrap.py).
        assert route is not None
        assert stuf is not None
        assert stuf.payload is not None
        assert decision.envelope is not None
        return Delivery(
            message_pk=message.pk,
            message_id=message.message_id,
            cpa_id=message.cpa_id,
            route=route,
            stuf=stuf,
            envelope=decision.envelope,
            payload=stuf.payload.data,
            info=decision.info,
            cross_ref_unknown=decision.cross_ref_unknown,
        )

    def _try(self, plan: _Planned, folders: FolderSyncs) -> _Tried:
        """Hand one message to its target (any thread); the outcome is recorded by the caller."""
        started = self.clock.now()
        result: Forwarded | TransportError | GgkEbmsError
        try:
            delivery = self._delivery(plan)
            result = self.forwarder(delivery.route.target, folders).forward(delivery)
        except (TransportError, GgkEbmsError) as exc:
            result = exc
        return _Tried(plan, started, self.clock.now(), result)

    def _forward_all(self, plans: Sequence[_Planned]) -> list[_Tried]:
        """Forward a batch: directory and HTTP targets up to ``delivery_parallel`` at once.

        Those forwarders share nothing (a file written under a unique temporary name, a request
        of its own) and spend their time in fsync or the network, outside the GIL. An ebMS or
        mailbox target writes to the database itself and goes one at a time, in order.

        The folders the batch wrote into are fsync'ed once each at the end (``FolderSyncs``),
        before any of its messages is recorded as delivered: one folder fsync per batch where
        there was one per message (docs/delivery.md "Batches", step 5).
        """
        parallel: list[_Planned] = []
        serial: list[_Planned] = []
        for plan in plans:
            route = plan.decision.route
            (parallel if route is not None and isinstance(route.target, _PARALLEL) else serial).append(plan)
        folders = FolderSyncs()
        tried = [self._try(plan, folders) for plan in serial]
        workers = min(self.settings.delivery_parallel, len(parallel))
        if workers <= 1:
            tried += [self._try(plan, folders) for plan in parallel]
        else:
            forward = functools.partial(self._try, folders=folders)
            tried += map_shared(forward, parallel, workers, name="deliver")
        return _synced(tried, folders.sync())

    def _finish_deliveries(self, tried: Sequence[_Tried]) -> None:
        """Record every delivered message of the batch in one transaction; the rest one by one."""
        done: list[tuple[_Tried, delivery_batch.Delivered]] = []
        for attempt in tried:
            job, result = attempt.plan.job, attempt.result
            if isinstance(result, TransportError):
                self._guarded(job, self._failed_try, job, attempt.plan.message, attempt.started, result)
            elif isinstance(result, GgkEbmsError):
                self._put_back(job, result)
            else:
                self._guarded(job, lambda a, r: done.append((a, self._delivered(a, r))), attempt, result)
        if not done:
            return
        try:
            failed = set(
                delivery_batch.finish_delivered(self.database, [d for _, d in done], now=self.clock.now())
            )
        except GgkEbmsError as exc:
            log.warning("outcomes of a batch of %d not stored at once (%s); one by one", len(done), exc)
            failed = {d.job_pk for _, d in done}
        for attempt, outcome in done:
            if outcome.job_pk in failed:
                self._guarded(attempt.plan.job, self._finish_one, outcome)

    def _delivered(self, attempt: _Tried, forwarded: Forwarded) -> delivery_batch.Delivered:
        message, decision = attempt.plan.message, attempt.plan.decision
        flags = "; crossRefnummer matches no message we sent (flagged)" if decision.cross_ref_unknown else ""
        event = Event.KEPT_FOR_PICKUP if forwarded.picked_up_later else Event.FORWARDED
        reason = f"{decision.reason}; delivered to {forwarded.where}{flags}"
        log.info("message %s %s: %s", message.pk, event, reason, extra=_fields(message, decision))
        changes = [BusinessChange(message.pk, Event.STUF_DELIVERED, f"delivered to {forwarded.where}")]
        if attempt.plan.answers is not None:
            # StUF-GGk heen/retour pairing: ours becomes answered, linked to this message.
            changes.append(
                BusinessChange(
                    attempt.plan.answers,
                    Event.STUF_ANSWERED,
                    f"answered by {decision.berichttype or 'Du01'} in message {message.pk}",
                    ref_pk=message.pk,
                )
            )
        return delivery_batch.Delivered(
            job_pk=attempt.plan.job.pk,
            message_pk=message.pk,
            started_at=attempt.started,
            finished_at=attempt.finished,
            http_status=forwarded.http_status,
            event=event,
            reason=reason,
            business=changes,
        )

    def _finish_one(self, outcome: delivery_batch.Delivered) -> None:
        """The one-job path for a delivered message whose steps failed inside the batch."""
        self.jobs.record_attempt(
            outcome.message_pk,
            job_pk=outcome.job_pk,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
            outcome="ok",
            http_status=outcome.http_status,
        )
        self.jobs.complete(
            outcome.job_pk, event=outcome.event, reason=outcome.reason, business=outcome.business
        )

    def _failed_try(self, job: Job, message: StoredMessage, started: datetime, exc: TransportError) -> None:
        now = self.clock.now()
        last = not exc.retryable or job.attempts >= self.settings.delivery_max_attempts
        self.jobs.record_attempt(
            message.pk,
            job_pk=job.pk,
            started_at=started,
            finished_at=now,
            outcome="fail" if last else "retry",
            http_status=exc.http_status,
            error=str(exc),
        )
        if last:
            why = "not retryable" if not exc.retryable else f"after {job.attempts} tries"
            reason = f"delivery failed ({why}): {exc}; re-try with `ggk-ebms messages retry {message.pk}`"
            log.warning("ALERT message %s parked as Failed: %s", message.pk, reason)
            self.jobs.fail(
                job.pk,
                reason,
                event=Event.NOT_DELIVERED,
                error_code="DeliveryFailure",
                business=[BusinessChange(message.pk, Event.STUF_HELD, reason, "DeliveryFailure")],
            )
            return
        due = now + retry_delay(self.settings, job.attempts)
        log.info(
            "message %s: delivery try %s failed (%s); next try at %s", message.pk, job.attempts, exc, due
        )
        self.jobs.retry(
            job.pk,
            due_at=due,
            error=str(exc),
            event=Event.DELIVERY_RETRY,
            reason=f"delivery try {job.attempts} failed: {exc}; next try at {due:%Y-%m-%d %H:%M:%S} UTC",
        )

    @staticmethod
    def _answers(decision: Decision, history: _BatchHistory) -> int | None:
        """A retour (Du01) whose crossRefnummer is the referentienummer of a Di01 we sent answers
        it (StUF-GGk heen/retour pairing): the pk of ours, to become answered on delivery."""
        stuf = decision.stuf
        if stuf is None or stuf.kind is not MessageKind.DU01 or decision.cross_ref_unknown:
            return None
        if decision.verdict is not Verdict.DELIVER:
            return None
        cross_ref = stuf.stuurgegevens.cross_refnummer
        return history.sent_message(cross_ref) if cross_ref else None

    def _bv03(self, message: StoredMessage, decision: Decision) -> list[BusinessChange]:
        """A Bv03 (or Fo03) about a message we sent: accepted (or refused) at the business layer
        (StUF 03.01 Bv03/Fo03, crossRefnummer)."""
        stuf = decision.stuf
        if decision.verdict is not Verdict.IGNORE or stuf is None:
            return []
        cross_ref = stuf.stuurgegevens.cross_refnummer
        sent = self.stufs.sent(cross_ref) if cross_ref else None
        if sent is None:
            return []
        if stuf.kind is MessageKind.BV03:
            return [
                BusinessChange(
                    sent.message_pk, Event.STUF_ACCEPTED, f"Bv03 in message {message.pk}", ref_pk=message.pk
                )
            ]
        if stuf.kind is MessageKind.FO03 and stuf.fout is not None:
            fout = stuf.fout
            return [
                BusinessChange(
                    sent.message_pk,
                    Event.STUF_REFUSED,
                    f"Fo03 received as message {message.pk}: {describe(fout.code)}: {fout.omschrijving}",
                    fout.code,
                    ref_pk=message.pk,
                    fout=(fout.code, fout.omschrijving),
                )
            ]
        return []

    def forwarder(self, target: Target, folders: FolderSyncs | None = None) -> Forwarder:
        """The forwarder for ``target``; a directory target's leaves its last folder fsync to
        ``folders`` when given."""
        if isinstance(target, DirectoryTarget):
            return DirectoryForwarder(target, folders)
        if isinstance(target, HttpTarget):
            return HttpForwarder(
                target, connect_timeout=self.settings.http_connect_timeout, timeout=self.settings.http_timeout
            )
        if isinstance(target, EbmsTarget):
            return EbmsForwarder(target, self.settings, self.database, ids=self.ids, clock=self.clock)
        if isinstance(target, MailboxTarget):
            return MailboxForwarder(self.mailbox)
        raise ConfigError(f"unknown route target {target!r}")  # pragma: no cover - Target is closed


def delivery_task(settings: Settings, **options: Any) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A factory for ``server.run.start_endpoint(workers=[...])``: deliver jobs and the outbox.

    Idle, the task waits for a wake-up from the receive path in this process (``wakeup``) or
    ``worker_poll_seconds``, whichever comes first: a received message is delivered without
    waiting for a poll, and jobs queued by other processes are still found by the poll.
    """
    from ggk_ebms.delivery.submit import scan_outbox  # submit builds on this module's neighbours

    async def run(runtime: Runtime) -> None:
        database = runtime.database
        worker = DeliveryWorker(settings, database, clock=runtime.clock, ids=runtime.ids, **options)
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:  # called on the receiving thread, after its commit
            loop.call_soon_threadsafe(woken.set)

        remove = wakeup.add_listener(wake)
        try:
            while True:
                # Cleared before looking: a wake-up that comes while we work is kept for the wait.
                woken.clear()
                busy = 0
                try:
                    busy += await asyncio.to_thread(worker.run_once)
                    busy += await asyncio.to_thread(
                        scan_outbox, settings, database, ids=worker.ids, clock=worker.clock
                    )
                except GgkEbmsError as exc:
                    log.warning("delivery worker: %s", exc)
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(woken.wait(), timeout=settings.worker_poll_seconds)
        finally:
            remove()

    return run
