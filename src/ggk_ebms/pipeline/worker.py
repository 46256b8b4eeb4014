"""The sending worker: drains the 'send' queue, one HTTP attempt per claimed job.

Pipelined (docs/sending.md "Pipelining"): up to ``send_max_in_flight`` jobs are in flight at
once, at most ``send_max_in_flight_per_partner`` of them on one partner endpoint, over the
client's keep-alive connections; free places are claimed again as attempts finish, in one
statement for several jobs, instead of waiting for a whole round. The database steps of the
jobs in flight are grouped (pipeline/batching.py, store/sending.py): their messages are read
together, their attempts started in one transaction and their outcomes written in one
transaction, each message's status still changed only by store/lifecycle.py, guarded.

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
is the one shared ``EbmsClient`` of the worker, pooling up to the per-partner limit of
connections per endpoint.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from ggk_ebms.clock import Clock
from ggk_ebms.config import Settings
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.ebms.build import content_digest
from ggk_ebms.errors import (
    CpaError,
    EbmsError,
    GgkEbmsError,
    StoreError,
    TransportError,
)
from ggk_ebms.lifecycle import Event, Status, Step
from ggk_ebms.pipeline import outbound
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.pipeline.batching import Batcher
from ggk_ebms.pipeline.records import new_message_from_received
from ggk_ebms.pipeline.reply import SOAP_CONTENT_TYPE
from ggk_ebms.pipeline.security import Decrypted, MessageSecurity
from ggk_ebms.runtime import Runtime
from ggk_ebms.security.tls import client_context_from_settings
from ggk_ebms.store.claims import ClaimKeeper
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import Job, JobQueue, NewAttempt, Outcome
from ggk_ebms.store.mappings import MappingStore
from ggk_ebms.store.messages import MessageStore, NewMessage, StoredMessage
from ggk_ebms.store.sending import Finished, Loaded, SendStore
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
    ``batch`` is what ``run_once`` claims; ``max_in_flight`` and ``max_per_partner`` bound
    ``run`` (defaults: the settings send_max_in_flight and send_max_in_flight_per_partner).
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
        max_in_flight: int | None = None,
        max_per_partner: int | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.clock = clock
        self.policy = policy
        self.signal_retry_delays = tuple(signal_retry_delays)
        self.worker_id = worker_id or default_worker_id()
        self.batch = batch
        self.max_in_flight = max(1, max_in_flight or settings.send_max_in_flight)
        self.max_per_partner = max(1, max_per_partner or settings.send_max_in_flight_per_partner)
        # A heartbeat lease (store.claims): renewed while we work on a job, so it can be short and
        # a killed worker's jobs are taken over within job_lease_seconds.
        self.lease = lease or timedelta(seconds=settings.job_lease_seconds)
        self.store = MessageStore(database, self.clock)
        self.jobs = JobQueue(database, self.clock)
        self.sending = SendStore(database, self.clock)
        self.agreements = agreements
        self.security = MessageSecurity(settings)
        self._client = client
        self._owns_client = client is None
        self._wake = asyncio.Event()
        # Set after a failed database call: our claims are handed back at the next chance.
        self._release_claims = False
        # The grouped database steps of the jobs in flight (pipeline/batching.py).
        group = max(self.max_in_flight, batch)
        self._loads: Batcher[int, tuple[Loaded, Agreement | CpaError]] = Batcher(self._load_many, most=group)
        self._starts: Batcher[tuple[int, str], Step] = Batcher(self._start_many, most=group)
        self._bodies: Batcher[tuple[StoredMessage, Any], _Body] = Batcher(self._bodies_many, most=group)
        self._finishes: Batcher[Finished, Step | None] = Batcher(self._finish_many, most=group)
        # Per partner endpoint (scheme, host, port): the attempts on the wire there right now.
        self._partners: dict[tuple[str, str, int | None], asyncio.Semaphore] = {}

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
        """Work until ``stop`` is set or the task is cancelled; idle polls every worker_poll_seconds.

        Keeps up to ``max_in_flight`` jobs going: when at least ``refill`` places are free (or
        none is in flight) it claims that many in one statement, so a slow partner holds only its
        own places and the others' messages keep flowing.
        """
        loop = asyncio.get_running_loop()

        def wake_up() -> None:
            loop.call_soon_threadsafe(self._wake.set)

        remove = outbound.add_submit_listener(wake_up)
        in_flight: set[asyncio.Task[None]] = set()
        # Claim again once a quarter of the places are free: fewer, fuller claims than one per
        # finished job, while the pipe never runs dry.
        refill = max(1, self.max_in_flight // 4)
        log.info("send worker %s started (at most %d in flight)", self.worker_id, self.max_in_flight)
        try:
            with ClaimKeeper(self.jobs, self.worker_id, self.lease, self.clock) as keeper:
                while stop is None or not stop.is_set():
                    free = self.max_in_flight - len(in_flight)
                    more = False
                    if self._release_claims and not in_flight:
                        await self._hand_back()
                    if not self._release_claims and (free >= refill or (free and not in_flight)):
                        try:
                            claimed = await self._claim(free)
                        except StoreError as exc:
                            log.error("send worker: database problem, trying again shortly: %s", exc)
                            self._release_claims = True
                            claimed = []
                        keeper.hold(job.pk for job in claimed)
                        for job in claimed:
                            task = asyncio.create_task(self._guarded(job, keeper))
                            in_flight.add(task)
                            task.add_done_callback(in_flight.discard)
                            task.add_done_callback(lambda _: self._wake.set())
                        more = len(claimed) == free  # a full claim: more may be due
                    if more:
                        continue
                    self._wake.clear()
                    waiters = [asyncio.ensure_future(self._wake.wait())]
                    if stop is not None:
                        waiters.append(asyncio.ensure_future(stop.wait()))
                    _, pending = await asyncio.wait(
                        waiters,
                        timeout=self.settings.worker_poll_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    for waiter in pending:
                        waiter.cancel()
                # Stopping: the attempts on the wire finish and are recorded.
                await asyncio.gather(*in_flight, return_exceptions=True)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            remove()
            await self.close()
            log.info("send worker %s stopped", self.worker_id)

    async def _hand_back(self) -> None:
        """After a failed database call nothing of ours is in flight: whatever we still hold
        as 'running' (a claim whose answer was lost) goes back to the queue at once."""
        try:
            released = await asyncio.to_thread(self.jobs.release, self.worker_id)
        except StoreError as exc:
            log.error("send worker: could not hand claims back yet: %s", exc)
            return
        self._release_claims = False
        if released:
            log.warning(
                "send worker %s handed %d job(s) back after a database failure", self.worker_id, released
            )

    async def _claim(self, limit: int) -> list[Job]:
        return await asyncio.to_thread(
            self.jobs.claim,
            QUEUE,
            now=self.clock.now(),
            worker_id=self.worker_id,
            limit=limit,
            lease=self.lease,
        )

    async def run_once(self) -> int:
        """Claim the due jobs (up to ``batch``) and carry them out concurrently; returns how many."""
        if self._release_claims:
            released = await asyncio.to_thread(self.jobs.release, self.worker_id)
            self._release_claims = False
            if released:
                log.warning(
                    "send worker %s handed %d job(s) back after a database failure", self.worker_id, released
                )
        claimed = await self._claim(self.batch)
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

    # -- grouped database steps (run in a thread by the batchers) ---------------------------------

    def _load_many(self, message_pks: list[int]) -> list[tuple[Loaded, Agreement | CpaError] | Exception]:
        """Each message with its attempts and its CPA (parsed once per process: the cache), or
        the CpaError that stops it; the CPA is read here, in the group's thread, to spare each
        message a thread hop of its own."""
        result: list[tuple[Loaded, Agreement | CpaError] | Exception] = []
        for found in self.sending.load(message_pks):
            if isinstance(found, LookupError):
                result.append(StoreError(str(found)))
                continue
            try:
                agreement: Agreement | CpaError = outbound.load_agreement(
                    self.database,
                    found.message.cpa_id,
                    max_cpa_bytes=self.settings.max_cpa_bytes,
                    agreements=self.agreements,
                )
            except CpaError as exc:
                agreement = exc
            result.append((found, agreement))
        return result

    def _start_many(self, started: list[tuple[int, str]]) -> list[Step | Exception]:
        return _one_by_one(self.sending.start, started)

    def _finish_many(self, items: list[Finished]) -> list[Step | Exception | None]:
        return _one_by_one(self.sending.finish, items)

    def _bodies_many(self, items: list[tuple[StoredMessage, Any]]) -> list[_Body | Exception]:
        """The bytes to send, the endpoint and the server certificate of each message: the parts
        of the whole group in one query, the mappings once per distinct (CPA, endpoint,
        certificate) of the group."""
        parts = self.store.parts_of({message.pk for message, _ in items})
        mapped: dict[tuple[str, str | None, bytes | None], tuple[str, Any]] = {}
        result: list[_Body | Exception] = []
        for message, peer in items:
            try:
                certificate = peer.server_certificate
                key = (
                    message.cpa_id,
                    peer.endpoint_uri,
                    certificate.der if certificate is not None else None,
                )
                if key not in mapped:
                    mapped[key] = self._mapped(message.cpa_id, peer)
                url, expected = mapped[key]
                content_type, body = outbound.http_body(message.envelope or b"", parts[message.pk])
                result.append(_Body(url, expected, content_type, body))
            except Exception as exc:
                result.append(exc)
        return result

    # -- one job ----------------------------------------------------------------------------------

    async def _process(self, job: Job) -> None:
        loaded, agreement = await self._loads.submit(job.message_pk)
        message = loaded.message
        if message.direction != "out":
            await self._finish(
                Finished(Outcome(job.pk, message.pk, "fail", reason="not an outbound message"))
            )
            return
        if outbound.is_final(message):
            await self._finish(Finished(Outcome(job.pk, message.pk, "complete")))
            return
        if message.kind == "business":
            await self._send_business(job, loaded, agreement)
        else:
            await self._send_signal(job, loaded, agreement)

    async def _send_business(self, job: Job, loaded: Loaded, agreement: Agreement | CpaError) -> None:
        message = loaded.message
        now = self.clock.now()
        expired = outbound.expiry_verdict(message.time_to_live, now)
        if expired is not None:
            log.warning("message %s expired: %s", message.message_id, expired.reason)
            await self._apply(job, message, expired)
            return
        try:
            if isinstance(agreement, CpaError):
                raise agreement
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
        slot = outbound.current_slot(loaded.attempts, now)
        started_step = await self._starts.submit((message.pk, f"attempt {slot.number} started"))
        if not started_step.writes:
            # An Acknowledgment made it final since the job was claimed: nothing to send.
            await self._finish(Finished(Outcome(job.pk, message.pk, "complete")))
            return
        prepared = await self._bodies.submit((message, peer))
        started, result = await self._post(
            prepared.url, prepared.body, prepared.content_type, prepared.certificate
        )
        signal = None
        keep = None
        if isinstance(result, HttpResult) and 200 <= result.status <= 299:
            sent_references = outbound.references_we_signed(message.envelope)
            signal = outbound.read_response(result, message.message_id, sent_references)
            if self._must_verify(signal, route):
                signal = await asyncio.to_thread(self._authentic, signal, route)
            if signal is not None and signal.kind is not SignalKind.OTHER:
                keep = _kept(signal, result.content_type)
        verdict = outbound.business_verdict(
            result,
            signal,
            facts=outbound.channel_facts(route),
            time_to_live_at=message.time_to_live,
            slot=slot,
            now=self.clock.now(),
            policy=self.policy,
        )
        await self._apply(job, message, verdict, attempt=(started, result), keep=keep)

    def _mapped(self, cpa_id: str, channel: Any) -> tuple[str, Any]:
        """The endpoint and server certificate to use: the CPA's, unless an operator mapped
        them elsewhere (URL and certificate mappings of the management API, docs/api.md)."""
        certificate = channel.server_certificate
        der = certificate.der if certificate is not None else None
        url, mapped = MappingStore(self.database).apply(channel.endpoint_uri or "", der, cpa_id)
        if certificate is not None and mapped != der:
            certificate = dataclasses.replace(certificate, der=mapped)
        return url, certificate

    @staticmethod
    def _must_verify(signal: outbound.ResponseSignal | None, route: lookup.SendingRoute) -> bool:
        """Whether ``_authentic`` has a signature to check (then it runs in a thread: xmlsec)."""
        if signal is None or signal.kind is SignalKind.OTHER or signal.message is None:
            return False
        try:
            return lookup.msh_signal_channel(route.to_party, signal.message.kind).profile.signed
        except CpaError:
            return False

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

    async def _send_signal(self, job: Job, loaded: Loaded, agreement: Agreement | CpaError) -> None:
        message = loaded.message
        try:
            if isinstance(agreement, CpaError):
                raise agreement
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
        started, result = await self._post(
            channel.endpoint_uri, message.envelope or b"", SOAP_CONTENT_TYPE, channel.server_certificate
        )
        verdict = outbound.signal_verdict(
            result,
            attempt=len(loaded.attempts) + 1,
            now=self.clock.now(),
            delays=self.signal_retry_delays,
            policy=self.policy,
        )
        await self._apply(job, message, verdict, attempt=(started, result))

    def _partner(self, url: str) -> asyncio.Semaphore:
        """The places for attempts on one partner endpoint (the client pools as many connections)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "", parts.port)
        if key not in self._partners:
            self._partners[key] = asyncio.Semaphore(self.max_per_partner)
        return self._partners[key]

    async def _post(
        self, url: str, body: bytes | list[bytes], content_type: str, server_certificate: Any
    ) -> tuple[Any, HttpResult | TransportError]:
        expected = server_certificate.der if server_certificate is not None else None
        async with self._partner(url):
            started = self.clock.now()
            try:
                result: HttpResult | TransportError = await self._http().post(
                    url, body=body, content_type=content_type, expected_server_cert_der=expected
                )
            except TransportError as exc:
                result = exc
        return started, result

    async def _finish(self, finished: Finished) -> Step | None:
        return await self._finishes.submit(finished)

    async def _apply(
        self,
        job: Job,
        message: StoredMessage,
        verdict: outbound.Verdict,
        *,
        attempt: tuple[Any, HttpResult | TransportError] | None = None,
        keep: NewMessage | None = None,
    ) -> None:
        """Record the attempt, keep the signal, finish the job and apply the verdict's lifecycle
        event in ONE transaction (shared with the other outcomes of its group).

        The status write is guarded (store.lifecycle): an asynchronous Acknowledgment or
        MessageError committed while we were sending (inbound) has made the message final, and
        the table keeps a final state, so the stale verdict is recorded in the history and dropped.
        """
        record = None
        if attempt is not None:
            started, result = attempt
            status = result.status if isinstance(result, HttpResult) else result.http_status
            record = NewAttempt(
                message_pk=message.pk,
                job_pk=job.pk,
                started_at=started,
                finished_at=self.clock.now(),
                outcome=verdict.outcome,
                http_status=status,
                error=verdict.error,
            )
        if verdict.job == "retry" and verdict.due_at is None:
            raise ValueError(f"a retry verdict without due_at: {verdict.reason}")
        outcome = Outcome(
            job.pk,
            message.pk,
            verdict.job,
            event=verdict.event,
            reason=verdict.reason,
            error_code=verdict.error_code if verdict.job == "fail" else None,
            due_at=verdict.due_at,
        )
        await self._finish(Finished(outcome, record, keep))
        if record is not None:
            log.info(
                "%s %s: attempt %s, HTTP %s -> %s",
                message.kind,
                message.message_id,
                verdict.outcome,
                record.http_status if record.http_status is not None else "-",
                verdict.reason,
            )


@dataclasses.dataclass(frozen=True)
class _Body:
    """What goes on the wire for one message, and where."""

    url: str
    certificate: Any
    content_type: str
    body: bytes | list[bytes]


def _kept(signal: outbound.ResponseSignal, content_type: str | None) -> NewMessage | None:
    """The Acknowledgment/MessageError of a synchronous answer as a message-log record, as
    inbound stores an asynchronous one, so ``messages show`` lists it either way."""
    if signal.message is None:
        return None
    return new_message_from_received(
        signal.message,
        content_type or SOAP_CONTENT_TYPE,
        content_digest(signal.message, []),
        status=Status.PROCESSED,
        envelope=signal.soap,
    )


def _one_by_one(call_many: Callable[[list[Any]], Sequence[Any]], items: list[Any]) -> list[Any | Exception]:
    """``call_many`` on the whole group (one transaction); if that fails for a group of more
    than one, each item again in a transaction of its own, so one bad item fails only itself
    (and a database that went away fails each, every job then handed back)."""
    try:
        return list(call_many(items))
    except Exception:
        if len(items) == 1:
            raise
    results: list[Any | Exception] = []
    for item in items:
        try:
            results.extend(call_many([item]))
        except Exception as exc:
            results.append(exc)
    return results


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
