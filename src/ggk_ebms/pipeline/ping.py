"""The Ping/Pong connectivity check (ebMS 2.0 §8; docs/sending.md): one Ping, and what its answer means.

The Ping goes straight to the partner's MSH signal channel (not through the send queue: the
answer is the point), with SyncReply so a partner that honours it puts the Pong in the HTTP
response. A partner that answers 204 instead sends the Pong as a request of its own to our
endpoint; then the check waits a bounded time for that Pong to show up in the database, which
needs our endpoint (``serve``) to be running on the same database.

The Ping is kept in the message log as sent, so the asynchronous Pong's RefToMessageId names a
message we know (docs/ebms.md catalogue #25) and the inbound pipeline accepts it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.ebms.build import BuiltMessage, build_ping
from ggk_ebms.errors import CpaError, CpaNotFoundError, TransportError
from ggk_ebms.lifecycle import Event, Status
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.pipeline.outbound import check_usable, load_agreement, typed_party_id
from ggk_ebms.pipeline.records import new_message_from_built
from ggk_ebms.pipeline.reply import SOAP_CONTENT_TYPE
from ggk_ebms.pipeline.security import MessageSecurity
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.mappings import MappingStore
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.transport.client import EbmsClient
from ggk_ebms.transport.diagnosis import Diagnosis, diagnose
from ggk_ebms.transport.result import HttpResult, Layer

DEFAULT_PONG_WAIT: Final = 15.0
_POLL_SECONDS: Final = 0.2


@dataclass(frozen=True)
class PingTarget:
    """Where a Ping for one CPA goes: the partner's MSH signal channel (CPPA 2.0, BP ch. 3)."""

    agreement: Agreement
    partner_oin: str
    endpoint: str
    server_cert_der: bytes | None


@dataclass(frozen=True)
class PingResult:
    """The verdict; ``asynchronous`` when the Pong came as a request of its own."""

    target: PingTarget
    ping_message_id: str
    diagnosis: Diagnosis
    asynchronous: bool = False

    @property
    def ok(self) -> bool:
        return self.diagnosis.ok


def ping_target(agreement: Agreement, settings: Settings) -> PingTarget:
    """Resolve our party, the partner and the endpoint of its MSH signal channel for a Ping."""
    ours = lookup.own_party(agreement, settings.party_ids)
    theirs = lookup.counterpart(agreement, ours)
    channel = lookup.msh_signal_channel(theirs, "Ping")
    if not channel.endpoint_uri:
        raise CpaError(f"CPA {agreement.cpa_id!r}: the partner's MSH signal channel has no endpoint")
    certificate = channel.server_certificate
    return PingTarget(
        agreement=agreement,
        partner_oin=typed_party_id(theirs).value,
        endpoint=channel.endpoint_uri,
        server_cert_der=certificate.der if certificate is not None else None,
    )


def find_cpa_for_partner(database: Database, settings: Settings, partner_oin: str, now: datetime) -> str:
    """The CPAId of the CPA we share with ``partner_oin``; CpaNotFoundError if none.

    A usable CPA (agreed, valid now) is preferred; of several (a renewal overlapping the old
    CPA), the one valid longest wins.
    """
    candidates: list[tuple[bool, datetime, str]] = []
    for stored in CpaRepository(database).list():
        try:
            agreement = load_agreement(database, stored.cpa_id, max_cpa_bytes=settings.max_cpa_bytes)
            theirs = lookup.counterpart(agreement, lookup.own_party(agreement, settings.party_ids))
        except CpaError:
            continue  # not an agreement of ours
        if any(pid.value == partner_oin for pid in theirs.party_ids):
            try:
                check_usable(agreement, now)
                usable = True
            except CpaError:
                usable = False
            candidates.append((usable, agreement.end, agreement.cpa_id))
    if not candidates:
        raise CpaNotFoundError(f"no imported CPA between us and {partner_oin}; see `ggk-ebms cpa list`")
    return max(candidates)[2]


def _record_ping(database: Database, built: BuiltMessage, clock: Clock) -> None:
    """Keep the Ping as a sent message. The store only queues outbound messages with a job;
    this one is sent by the check itself, so its job is finished at once and never claimed (it
    is due in a year, far beyond the few milliseconds it exists as pending)."""
    store = MessageStore(database, clock)
    record = new_message_from_built(built, sync=True, status=Status.CREATED)
    pk = store.submit(record, [], due_at=clock.now() + timedelta(days=365))
    jobs = JobQueue(database, clock)
    for job in jobs.jobs_for(pk):
        jobs.complete(job.pk, event=Event.SIGNAL_SENT, reason="sent by the ping check")


def _async_pong(database: Database, ping_message_id: str) -> bool:
    related = MessageStore(database).list_related(ping_message_id)
    return any(m.direction == "in" and m.kind == "Pong" for m in related)


async def ping(
    settings: Settings,
    database: Database,
    client: EbmsClient,
    *,
    cpa_id: str,
    ids: IdGenerator,
    clock: Clock,
    pong_wait: float = DEFAULT_PONG_WAIT,
    agreements: AgreementCache | None = None,
) -> PingResult:
    """Send one Ping on CPA ``cpa_id`` and diagnose the answer (``transport.diagnosis``).

    ``ok`` only for a Pong that refers to this Ping, in the response or, after a 204, arriving
    at our endpoint within ``pong_wait`` seconds. Raises CpaError when the CPA cannot be used.
    """
    agreement = await asyncio.to_thread(
        load_agreement, database, cpa_id, max_cpa_bytes=settings.max_cpa_bytes, agreements=agreements
    )
    check_usable(agreement, clock.now())
    target = ping_target(agreement, settings)
    # URL and certificate mappings of the management API apply to a Ping too (docs/api.md).
    endpoint, cert_der = await asyncio.to_thread(
        MappingStore(database).apply, target.endpoint, target.server_cert_der, agreement.cpa_id
    )
    target = replace(target, endpoint=endpoint, server_cert_der=cert_der)
    ours = lookup.own_party(agreement, settings.party_ids)
    built = build_ping(
        agreement.cpa_id,
        typed_party_id(ours, settings.party_ids),
        typed_party_id(lookup.counterpart(agreement, ours)),
        ids=ids,
        clock=clock,
        sync_reply=True,
    )
    # A Ping travels on our MSH signal channel and is signed when that channel signs (docs/signing.md).
    built = MessageSecurity(settings).sign_signal(built, lookup.msh_signal_channel(ours, "Ping"))
    message_id = built.header.message_id
    await asyncio.to_thread(_record_ping, database, built, clock)
    started = time.perf_counter()
    try:
        outcome: HttpResult | TransportError = await client.post(
            target.endpoint,
            body=built.envelope,
            content_type=SOAP_CONTENT_TYPE,
            expected_server_cert_der=target.server_cert_der,
        )
    except TransportError as exc:
        outcome = exc
    diagnosis = diagnose(outcome, endpoint=target.endpoint, ping_message_id=message_id)
    accepted_empty = (
        isinstance(outcome, HttpResult) and 200 <= outcome.status <= 299 and not outcome.body.strip()
    )
    if diagnosis.ok or not accepted_empty:
        return PingResult(target, message_id, diagnosis)
    deadline = time.monotonic() + pong_wait
    while time.monotonic() < deadline:
        if await asyncio.to_thread(_async_pong, database, message_id):
            elapsed = round((time.perf_counter() - started) * 1000)
            pong = Diagnosis(
                Layer.OK,
                True,
                f"Pong received asynchronously in {elapsed} ms.",
                "The connection works both ways: the partner reached our endpoint with its Pong.",
                http_status=diagnosis.http_status,
                round_trip_ms=elapsed,
            )
            return PingResult(target, message_id, pong, asynchronous=True)
        await asyncio.sleep(_POLL_SECONDS)
    waited = replace(
        diagnosis,
        advice=diagnosis.advice
        + f" No Pong reached our endpoint within {pong_wait:g} s either: is `ggk-ebms serve` running "
        "on this database, and can the partner reach our endpoint?",
    )
    return PingResult(target, message_id, waited)
