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
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, Final

from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery.fo01 import fo01_wanted, queue_fo01
from ggk_ebms.delivery.forwarders.base import Delivery, Forwarder
from ggk_ebms.delivery.forwarders.directory import DirectoryForwarder
from ggk_ebms.delivery.forwarders.ebms import EbmsForwarder
from ggk_ebms.delivery.forwarders.http import HttpForwarder
from ggk_ebms.delivery.forwarders.mailbox import MailboxForwarder
from ggk_ebms.delivery.unwrap import Decision, Verdict, unwrap
from ggk_ebms.errors import ConfigError, GgkEbmsError, TransportError
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
from ggk_ebms.store.claims import ClaimKeeper
from ggk_ebms.store.db import Database
from ggk_ebms.store.exchanges import load_rules
from ggk_ebms.store.jobs import Job, JobQueue
from ggk_ebms.store.lifecycle import BusinessChange
from ggk_ebms.store.mailbox import Mailbox
from ggk_ebms.store.messages import MessageStore, StoredMessage
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.store.stuf import StufRecord, StufStore
from ggk_ebms.stuf.codes import describe
from ggk_ebms.stuf.model import MessageKind

log = logging.getLogger(__name__)

BATCH: Final = 10


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


class _StoreHistory:
    """``unwrap.History`` over the stuf_message table, for one message being handled."""

    def __init__(self, stufs: StufStore, message_pk: int) -> None:
        self.stufs = stufs
        self.message_pk = message_pk

    def earlier_payload(self, zender: str, referentienummer: str) -> tuple[int, str | None] | None:
        earlier = self.stufs.received_earlier(zender, referentienummer, not_message_pk=self.message_pk)
        return None if earlier is None else (earlier.message_pk, earlier.payload_sha256)

    def we_sent(self, referentienummer: str) -> bool:
        return self.stufs.sent(referentienummer) is not None


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
        """Handle every due 'deliver' job (in batches); returns how many were handled.

        Claims are a heartbeat lease (store.claims): renewed while a job is handled, so a killed
        worker's jobs are taken over within job_lease_seconds.
        """
        handled = 0
        lease = timedelta(seconds=self.settings.job_lease_seconds)
        with ClaimKeeper(self.jobs, self.worker_id, lease, self.clock) as keeper:
            while True:
                jobs = self.jobs.claim(
                    "deliver", now=self.clock.now(), worker_id=self.worker_id, limit=BATCH, lease=lease
                )
                keeper.hold(job.pk for job in jobs)
                for job in jobs:
                    try:
                        self.handle(job)
                    finally:
                        keeper.drop(job.pk)
                handled += len(jobs)
                if len(jobs) < BATCH:
                    return handled

    def handle(self, job: Job) -> None:
        try:
            self._handle(job)
        except GgkEbmsError as exc:
            # The database or a CPA failed under us: try the whole job again later. If the
            # database is gone, the claim is no longer renewed and lapses after the lease.
            log.warning("delivery of message %s interrupted, retrying later: %s", job.message_pk, exc)
            try:
                self.jobs.retry(
                    job.pk, due_at=self.clock.now() + retry_delay(self.settings, job.attempts), error=str(exc)
                )
            except GgkEbmsError as again:
                log.warning(
                    "delivery job %s not put back (%s); it is taken over after the lease", job.pk, again
                )

    def routing_table(self) -> RoutingTable | None:
        """The routing table in force, parsed once per imported version."""
        current = self.routes.current()
        if current is None:
            return None
        if self._table is None or self._table[0] != current.sha256:
            self._table = (current.sha256, current.table())
        return self._table[1]

    def _handle(self, job: Job) -> None:
        message = self.messages.get(job.message_pk)
        if message.direction != "in" or message.kind != "business":
            self.jobs.complete(job.pk)
            return
        # A large part comes as a temporary file, parsed slice by slice (docs/performance.md "Memory").
        parts = self.messages.part_contents(message.pk)
        if take_report(self.settings, self.database, message, parts, self.clock):
            # A CBS Monitor Sociaal Domein report (a PDF, docs/cbs.md): kept in the mailbox for
            # pick-up; the iWmo/iJw checks below would refuse it as no XML payload.
            self.jobs.complete(job.pk, event=Event.KEPT_FOR_PICKUP, reason="CBS rapport kept in the mailbox")
            return
        try:
            table = self.routing_table()
        except ConfigError as exc:  # e.g. the CBS list of a new year no longer has a code
            table = None
            log.warning("the stored routing table cannot be used: %s", exc)
        decision = unwrap(
            parts,
            sender_ids=[message.from_party_id, message.cpa_id],
            table=table,
            history=_StoreHistory(self.stufs, message.pk),
            schemas=self.schemas,
            rules=load_rules(self.settings, self.database),
        )
        self._record(message, decision)
        for warning in decision.warnings:
            log.info("message %s: %s", message.pk, warning)
        handler = {
            Verdict.DELIVER: self._deliver,
            Verdict.DUPLICATE: self._done,
            Verdict.IGNORE: self._done,
            Verdict.REFUSE: self._refuse,
            Verdict.QUARANTINE: self._park,
            Verdict.HOLD: self._park,
            Verdict.FO01_RECEIVED: self._fo01_received,
        }[decision.verdict]
        handler(job, message, decision)

    def _record(self, message: StoredMessage, decision: Decision) -> None:
        stuf = decision.stuf
        if stuf is None:
            return
        sg = stuf.stuurgegevens
        self.stufs.record(
            StufRecord(
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
            ),
            business=Event.STUF_RECEIVED,
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

    def _deliver(self, job: Job, message: StoredMessage, decision: Decision) -> None:
        route, stuf = decision.route, decision.stuf
        # A DELIVER decision always carries route, message, payload and envelope (unwrap.py).
        assert route is not None
        assert stuf is not None
        assert stuf.payload is not None
        assert decision.envelope is not None
        delivery = Delivery(
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
        started = self.clock.now()
        try:
            forwarded = self.forwarder(route.target).forward(delivery)
        except TransportError as exc:
            self._failed_try(job, message, started, exc)
            return
        self.jobs.record_attempt(
            message.pk,
            job_pk=job.pk,
            started_at=started,
            finished_at=self.clock.now(),
            outcome="ok",
            http_status=forwarded.http_status,
        )
        flags = "; crossRefnummer matches no message we sent (flagged)" if decision.cross_ref_unknown else ""
        event = Event.KEPT_FOR_PICKUP if forwarded.picked_up_later else Event.FORWARDED
        reason = f"{decision.reason}; delivered to {forwarded.where}{flags}"
        log.info("message %s %s: %s", message.pk, event, reason, extra=_fields(message, decision))
        changes = [BusinessChange(message.pk, Event.STUF_DELIVERED, f"delivered to {forwarded.where}")]
        answered = self._answers(message, decision)
        if answered is not None:
            changes.append(answered)
        self.jobs.complete(job.pk, event=event, reason=reason, business=changes)

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

    def _answers(self, message: StoredMessage, decision: Decision) -> BusinessChange | None:
        """A retour (Du01) whose crossRefnummer is the referentienummer of a Di01 we sent answers
        it (StUF-GGk heen/retour pairing): ours becomes answered, linked to this message."""
        stuf = decision.stuf
        if stuf is None or stuf.kind is not MessageKind.DU01 or decision.cross_ref_unknown:
            return None
        cross_ref = stuf.stuurgegevens.cross_refnummer
        sent = self.stufs.sent(cross_ref) if cross_ref else None
        if sent is None:
            return None
        return BusinessChange(
            sent.message_pk,
            Event.STUF_ANSWERED,
            f"answered by {stuf.functie or stuf.kind.value} in message {message.pk}",
            ref_pk=message.pk,
        )

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

    def forwarder(self, target: Target) -> Forwarder:
        if isinstance(target, DirectoryTarget):
            return DirectoryForwarder(target)
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
    """A factory for ``server.run.start_endpoint(workers=[...])``: deliver jobs and the outbox."""
    from ggk_ebms.delivery.submit import scan_outbox  # submit builds on this module's neighbours

    async def run(runtime: Runtime) -> None:
        database = runtime.database
        worker = DeliveryWorker(settings, database, clock=runtime.clock, ids=runtime.ids, **options)
        while True:
            busy = 0
            try:
                busy += await asyncio.to_thread(worker.run_once)
                busy += await asyncio.to_thread(
                    scan_outbox, settings, database, ids=worker.ids, clock=worker.clock
                )
            except GgkEbmsError as exc:
                log.warning("delivery worker: %s", exc)
            if not busy:
                await asyncio.sleep(settings.worker_poll_seconds)

    return run
