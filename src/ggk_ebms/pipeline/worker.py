"""The sending worker: drains the 'send' queue, one HTTP attempt per claimed job.

Several workers may share a database, in one process or many (``serve`` with worker_enabled,
any number of ``ggk-ebms worker``): jobs are claimed with ``JobQueue.claim``, which uses
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so no job is sent by two workers at once. A worker
that dies mid-send leaves its job 'running'; after the lease another worker takes it over and
sends the stored envelope again, same MessageId, which the partner's duplicate elimination
absorbs (ebMS 2.0 §6.5.3).

Per job: a message that is final already (an asynchronous Acknowledgment arrived, ebMS 2.0 §6.3)
only finishes the job; one past its TimeToLive becomes Expired (ebMS 2.0 §6.4, BP ch. 3); otherwise the stored
bytes go to the partner: business messages to the receiving channel of the CPA binding (CPPA 2.0, BP ch. 3),
signals to the partner's MSH signal channel. The decision is ``pipeline.outbound``'s; every attempt is
recorded (time, HTTP status, error text).

The database calls are synchronous and run in threads (``asyncio.to_thread``); the HTTP client
is the one shared ``EbmsClient`` of the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, Final

from ggk_ebms.clock import Clock
from ggk_ebms.config import Settings
from ggk_ebms.cpa import lookup
from ggk_ebms.ebms.build import content_digest
from ggk_ebms.errors import (
    CpaError,
    DuplicateMessageError,
    EbmsError,
    GgkEbmsError,
    StoreError,
    TransportError,
)
from ggk_ebms.lifecycle import Event, Status
from ggk_ebms.pipeline import outbound
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.pipeline.records import new_message_from_received
from ggk_ebms.pipeline.reply import SOAP_CONTENT_TYPE
from ggk_ebms.pipeline.security import Decrypted, MessageSecurity
from ggk_ebms.runtime import Runtime
from ggk_ebms.security.tls import client_context_from_settings
from ggk_ebms.store.claims import ClaimKeeper
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import Job, JobQueue
from ggk_ebms.store.mappings import MappingStore
from ggk_ebms.store.messages import MessageStore, StoredMessage
from ggk_ebms.transport.client import EbmsClient
from ggk_ebms.transport.result import HttpResult
from ggk_ebms.transport.retry import DEFAULT_POLICY, RetryPolicy, SignalKind

log = logging.getLogger(__name__)

QUEUE: Final = "send"
DEFAULT_BATCH: Final = 10
# After an unexpected error the job waits this long, so a bug cannot make a worker spin.
_ERROR_BACKOFF: Final = timedelta(minutes=1)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SendWorker:
    """Claims due 'send' jobs and carries them out. ``run_once`` for one round, ``run`` forever.

    ``policy`` and ``signal_retry_delays`` are the retry knobs (tests shorten them);
    ``client`` defaults to an ``EbmsClient`` with our client certificate from the settings.
    """

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        clock: Clock,
        agreements: AgreementCache,
        client: EbmsClient | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        signal_retry_delays: Sequence[timedelta] = outbound.SIGNAL_RETRY_DELAYS,
        worker_id: str | None = None,
        batch: int = DEFAULT_BATCH,
        lease: timedelta | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.clock = clock
        self.policy = policy
        self.signal_retry_delays = tuple(signal_retry_delays)
        self.worker_id = worker_id or default_worker_id()
        self.batch = batch
        # A heartbeat lease (store.claims): renewed while we work on a job, so it can be short and
        # a killed worker's jobs are taken over within job_lease_seconds.
        self.lease = lease or timedelta(seconds=settings.job_lease_seconds)
        self.store = MessageStore(database, self.clock)
        self.jobs = JobQueue(database, self.clock)
        self.agreements = agreements
        self.security = MessageSecurity(settings)
        self._client = client
        self._owns_client = client is None
        self._wake = asyncio.Event()
        # Set after a failed database call: our claims are handed back at the next chance.
        self._release_claims = False

    def _http(self) -> EbmsClient:
        if self._client is None:
            self._client = EbmsClient.from_settings(
                self.settings, client_context_from_settings(self.settings)
            )
        return self._client

    async def close(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.close()
            self._client = None

    # -- loop -------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for work now instead of at the next poll (thread-safe through the loop)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Work until ``stop`` is set or the task is cancelled; idle polls every worker_poll_seconds."""
        loop = asyncio.get_running_loop()

        def wake_up() -> None:
            loop.call_soon_threadsafe(self._wake.set)

        remove = outbound.add_submit_listener(wake_up)
        log.info("send worker %s started", self.worker_id)
        try:
            while stop is None or not stop.is_set():
                try:
                    done = await self.run_once()
                except StoreError as exc:
                    log.error("send worker: database problem, trying again shortly: %s", exc)
                    self._release_claims = True
                    done = 0
                if done:
                    continue
                self._wake.clear()
                waiters = [asyncio.ensure_future(self._wake.wait())]
                if stop is not None:
                    waiters.append(asyncio.ensure_future(stop.wait()))
                _, pending = await asyncio.wait(
                    waiters, timeout=self.settings.worker_poll_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in pending:
                    waiter.cancel()
        finally:
            remove()
            await self.close()
            log.info("send worker %s stopped", self.worker_id)

    async def run_once(self) -> int:
        """Claim the due jobs (up to ``batch``) and carry them out concurrently; returns how many."""
        if self._release_claims:
            released = await asyncio.to_thread(self.jobs.release, self.worker_id)
            self._release_claims = False
            if released:
                log.warning(
                    "send worker %s handed %d job(s) back after a database failure", self.worker_id, released
                )
        claimed = await asyncio.to_thread(
            self.jobs.claim,
            QUEUE,
            now=self.clock.now(),
            worker_id=self.worker_id,
            limit=self.batch,
            lease=self.lease,
        )
        if claimed:
            with ClaimKeeper(self.jobs, self.worker_id, self.lease, self.clock) as keeper:
                keeper.hold(job.pk for job in claimed)
                await asyncio.gather(*(self._guarded(job, keeper) for job in claimed))
        return len(claimed)

    async def _guarded(self, job: Job, keeper: ClaimKeeper) -> None:
        try:
            await self._process(job)
        except asyncio.CancelledError:
            raise
        except StoreError as exc:
            # The database failed under this job: how far it got is unknown, so it goes back to
            # the queue (now, or after the lease if the database stays away).
            log.error("send job %d interrupted by a database failure: %s", job.pk, exc)
            keeper.drop(job.pk)
            try:
                await asyncio.to_thread(self.jobs.release, self.worker_id, [job.pk])
            except GgkEbmsError:
                self._release_claims = True
        except Exception as exc:
            log.exception("send job %d failed unexpectedly; retried later", job.pk)
            try:
                await asyncio.to_thread(
                    self.jobs.retry,
                    job.pk,
                    due_at=self.clock.now() + _ERROR_BACKOFF,
                    error=f"internal error: {type(exc).__name__}",
                )
            except GgkEbmsError:
                log.exception("could not put send job %d back", job.pk)
                self._release_claims = True
        finally:
            keeper.drop(job.pk)

    # -- one job ----------------------------------------------------------------------------------

    async def _process(self, job: Job) -> None:
        message = await asyncio.to_thread(self.store.get, job.message_pk)
        if message.direction != "out":
            await asyncio.to_thread(self.jobs.fail, job.pk, "not an outbound message")
            return
        if outbound.is_final(message):
            await asyncio.to_thread(self.jobs.complete, job.pk)
            return
        if message.kind == "business":
            await self._send_business(job, message)
        else:
            await self._send_signal(job, message)

    async def _send_business(self, job: Job, message: StoredMessage) -> None:
        now = self.clock.now()
        expired = outbound.expiry_verdict(message.time_to_live, now)
        if expired is not None:
            log.warning("message %s expired: %s", message.message_id, expired.reason)
            await self._apply(job, message, expired)
            return
        try:
            agreement = await asyncio.to_thread(
                outbound.load_agreement,
                self.database,
                message.cpa_id,
                max_cpa_bytes=self.settings.max_cpa_bytes,
                agreements=self.agreements,
            )
            route = outbound.resolve_business_route(
                agreement,
                self.settings,
                service=message.service,
                action=message.action,
                role=message.from_role,
            )
        except CpaError as exc:
            await self._apply(
                job, message, outbound.Verdict("fail", str(exc), "fail", None, Event.SEND_FAILED, str(exc))
            )
            return
        peer = route.peer_channel
        previous = await asyncio.to_thread(self.jobs.attempts, message.pk)
        slot = outbound.current_slot(previous, now)
        started_step = await asyncio.to_thread(
            self.store.transition, message.pk, Event.ATTEMPT_STARTED, f"attempt {slot.number} started"
        )
        if not started_step.writes:
            # An Acknowledgment made it final since the job was claimed: nothing to send.
            await asyncio.to_thread(self.jobs.complete, job.pk)
            return
        parts = await asyncio.to_thread(self.store.parts, message.pk)
        content_type, body = outbound.http_body(message.envelope or b"", parts)
        url, server_certificate = await asyncio.to_thread(self._mapped, message.cpa_id, peer)
        started, result = await self._post(url, body, content_type, server_certificate)
        signal = None
        if isinstance(result, HttpResult) and 200 <= result.status <= 299:
            sent_references = outbound.references_we_signed(message.envelope)
            signal = outbound.read_response(result, message.message_id, sent_references)
            signal = await asyncio.to_thread(self._authentic, signal, route)
            if signal is not None and signal.kind is not SignalKind.OTHER:
                await asyncio.to_thread(self._keep_signal, signal, result.content_type)
        verdict = outbound.business_verdict(
            result,
            signal,
            facts=outbound.channel_facts(route),
            time_to_live_at=message.time_to_live,
            slot=slot,
            now=self.clock.now(),
            policy=self.policy,
        )
        await self._record(job, message, started, result, verdict)
        await self._apply(job, message, verdict)

    def _mapped(self, cpa_id: str, channel: Any) -> tuple[str, Any]:
        """The endpoint and server certificate to use: the CPA's, unless an operator mapped
        them elsewhere (URL and certificate mappings of the management API, docs/api.md)."""
        certificate = channel.server_certificate
        der = certificate.der if certificate is not None else None
        url, mapped = MappingStore(self.database).apply(channel.endpoint_uri or "", der, cpa_id)
        if certificate is not None and mapped != der:
            certificate = dataclasses.replace(certificate, der=mapped)
        return url, certificate

    def _authentic(
        self, signal: outbound.ResponseSignal | None, route: lookup.SendingRoute
    ) -> outbound.ResponseSignal | None:
        """A synchronous Ack/MessageError counts only when its signature verifies, if the
        partner's MSH signal channel signs (ebMS 2.0 §6.3, KVS ch. 5); an invalid one is ignored and the
        retries go on (ebMS 2.0 §6.3)."""
        if signal is None or signal.kind is SignalKind.OTHER or signal.message is None:
            return signal
        try:
            channel = lookup.msh_signal_channel(route.to_party, signal.message.kind)
        except CpaError:
            return signal
        if not channel.profile.signed:
            return signal
        try:
            self.security.open_inbound(
                signal.soap,
                Decrypted.unencrypted(),
                sender=channel,
                timestamp=signal.message.header.timestamp,
            )
        except EbmsError as exc:
            log.warning("%s %s ignored: %s", signal.message.kind, signal.message.header.message_id, exc)
            return outbound.ResponseSignal(SignalKind.OTHER, signal.message, signal.soap)
        return signal

    async def _send_signal(self, job: Job, message: StoredMessage) -> None:
        try:
            agreement = await asyncio.to_thread(
                outbound.load_agreement,
                self.database,
                message.cpa_id,
                max_cpa_bytes=self.settings.max_cpa_bytes,
                agreements=self.agreements,
            )
            ours = lookup.own_party(agreement, self.settings.party_ids)
            channel = lookup.msh_signal_channel(lookup.counterpart(agreement, ours), message.action)
            if not channel.endpoint_uri:
                raise CpaError(f"CPA {agreement.cpa_id!r}: the partner's MSH signal channel has no endpoint")
        except CpaError as exc:
            await self._apply(
                job,
                message,
                outbound.Verdict("fail", str(exc), "fail", None, Event.SIGNAL_GIVEN_UP, str(exc)),
            )
            return
        previous = await asyncio.to_thread(self.jobs.attempts, message.pk)
        started, result = await self._post(
            channel.endpoint_uri, message.envelope or b"", SOAP_CONTENT_TYPE, channel.server_certificate
        )
        verdict = outbound.signal_verdict(
            result,
            attempt=len(previous) + 1,
            now=self.clock.now(),
            delays=self.signal_retry_delays,
            policy=self.policy,
        )
        await self._record(job, message, started, result, verdict)
        await self._apply(job, message, verdict)

    async def _post(
        self, url: str, body: bytes | list[bytes], content_type: str, server_certificate: Any
    ) -> tuple[Any, HttpResult | TransportError]:
        started = self.clock.now()
        expected = server_certificate.der if server_certificate is not None else None
        try:
            result: HttpResult | TransportError = await self._http().post(
                url, body=body, content_type=content_type, expected_server_cert_der=expected
            )
        except TransportError as exc:
            result = exc
        return started, result

    def _keep_signal(self, signal: outbound.ResponseSignal, content_type: str | None) -> None:
        """Store the Acknowledgment/MessageError of a synchronous answer in the message log, as
        inbound stores an asynchronous one, so ``messages show`` lists it either way."""
        if signal.message is None:
            return
        record = new_message_from_received(
            signal.message,
            content_type or SOAP_CONTENT_TYPE,
            content_digest(signal.message, []),
            status=Status.PROCESSED,
            envelope=signal.soap,
        )
        # A DuplicateMessageError means the same signal was kept already (a replayed Ack).
        with contextlib.suppress(DuplicateMessageError):
            self.store.receive(record, [], response=None, deliver=False, send_response_async=False)

    async def _record(
        self,
        job: Job,
        message: StoredMessage,
        started: Any,
        result: HttpResult | TransportError,
        verdict: outbound.Verdict,
    ) -> None:
        status = result.status if isinstance(result, HttpResult) else result.http_status
        await asyncio.to_thread(
            self.jobs.record_attempt,
            message.pk,
            job_pk=job.pk,
            started_at=started,
            finished_at=self.clock.now(),
            outcome=verdict.outcome,
            http_status=status,
            error=verdict.error,
        )
        log.info(
            "%s %s: attempt %s, HTTP %s -> %s",
            message.kind,
            message.message_id,
            verdict.outcome,
            status if status is not None else "-",
            verdict.reason,
        )

    async def _apply(self, job: Job, message: StoredMessage, verdict: outbound.Verdict) -> None:
        """Finish the job and apply the verdict's lifecycle event in ONE transaction.

        The status write is guarded (store.lifecycle): an asynchronous Acknowledgment or
        MessageError committed while we were sending (inbound) has made the message final, and
        the table keeps a final state, so the stale verdict is recorded in the history and dropped.
        """
        if verdict.job == "complete":
            await asyncio.to_thread(self.jobs.complete, job.pk, event=verdict.event, reason=verdict.reason)
        elif verdict.job == "fail":
            await asyncio.to_thread(
                self.jobs.fail, job.pk, verdict.reason, event=verdict.event, error_code=verdict.error_code
            )
        else:
            assert verdict.due_at is not None
            await asyncio.to_thread(
                self.jobs.retry,
                job.pk,
                due_at=verdict.due_at,
                error=verdict.reason,
                event=verdict.event,
                reason=verdict.reason,
            )


def worker_task(settings: Settings, **options: Any) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A factory for ``server.run.start_endpoint(workers=[...])``: a SendWorker on that runtime.

    Our client certificate is loaded here, so a bad tls_client_cert stops ``serve`` at start
    (ConfigError) instead of failing every send later.
    """
    if "client" not in options:
        client_context_from_settings(settings)

    async def run(runtime: Runtime) -> None:
        await SendWorker(
            settings, runtime.database, clock=runtime.clock, agreements=runtime.agreements, **options
        ).run()

    return run
