"""Outbound: the gemeente's send worker delivers queued messages to the RINIS counterpart.

Both sides are real ``ggk-ebms serve`` processes on loopback, each with its own database of the
chosen backend, under a CPA made for the run's ports. The messages are queued first with
``submit_message`` (as ``ggk-ebms send`` or the outbox would), then the gemeente's server starts
with its worker and the clock runs until every message is final: Delivered (the counterpart's
Acknowledgment arrived) or not. The rate is messages Delivered per second of that interval.

With ``ack="sync"`` the CPA asks for signals in the HTTP response (one round trip per message);
with ``ack="async"`` the counterpart answers 204 and its own worker sends the Acknowledgment back.

The memory scenario (bench/memory.py) reuses this set-up for its sending side.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench import loadgen
from bench.common import ACTION_DI01, SERVICE, Report, ratio
from bench.databases import private_database
from bench.messages import SMALL, build_mix, numbered_stuf
from bench.servers import (
    baseline_process,
    endpoint_process,
    free_port,
    party_settings,
)
from bench.setup import bench_cpa, cpa_folder, wait_for_statuses, work_folder
from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.pipeline.outbound import submit_message
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import NewPart

COLUMNS: Final = (
    "target",
    "messages",
    "delivered",
    "seconds",
    "msg_per_s",
    "vs_baseline",
    "failed",
    "sender_cpu_ms",
    "partner_cpu_ms",
)
# The no-op baseline's load: this many requests in flight (the send worker itself may have up to
# send_max_in_flight_per_partner on the wire to the counterpart, docs/sending.md "Pipelining").
WORKER_BATCH: Final = 10
_FINAL: Final = ("Delivered", "DeliveryFailed", "Expired")


@dataclass
class Pair:
    gemeente: Settings
    rinis: Settings
    gemeente_db: str
    rinis_db: str
    agreement: Agreement
    work: Path


@contextmanager
def pair(db: str, *, sync: bool) -> Iterator[Pair]:
    """Both sides' settings, databases and the CPA; servers are started by the caller."""
    with ExitStack() as stack:
        work = stack.enter_context(work_folder())
        gemeente_db = stack.enter_context(private_database(db, work, "gemeente"))
        rinis_db = stack.enter_context(private_database(db, work, "rinis"))
        g_port, r_port = free_port(), free_port()
        cpa_dir, agreement = cpa_folder(work, "bench", bench_cpa(g_port, r_port, sync_reply=sync))
        gemeente = party_settings(
            "gemeente", work, gemeente_db, cpa_dir, g_port, worker_enabled=True, worker_poll_seconds=0.1
        )
        # RINIS needs its worker only to send asynchronous Acknowledgments back.
        rinis = party_settings(
            "rinis", work, rinis_db, cpa_dir, r_port, worker_enabled=not sync, worker_poll_seconds=0.1
        )
        yield Pair(gemeente, rinis, gemeente_db, rinis_db, agreement, work)


def queue_messages(p: Pair, stuf: bytes | Callable[[int], bytes], count: int) -> None:
    """Migrate the gemeente's database, import the CPA and queue ``count`` messages.

    ``stuf`` is the one envelope every message carries, or a function giving message n's.
    """
    database = Database(p.gemeente_db)
    try:
        database.upgrade()
        for line in import_cpa_dir(p.gemeente, database):
            if "not imported" in line:
                raise RuntimeError(line)
        ids = UuidIdGenerator(host="gemeente.bench.test")
        clock = SystemClock()
        for n in range(count):
            submit_message(
                p.gemeente,
                database,
                cpa_id=p.agreement.cpa_id,
                service=SERVICE,
                action=ACTION_DI01,
                parts=[NewPart(f"{ids.uuid()}@bench.test", "text/xml", stuf(n) if callable(stuf) else stuf)],
                ids=ids,
                clock=clock,
            )
    finally:
        database.dispose()


def wait_until_final(db_url: str, count: int, timeout: float) -> dict[str, int]:
    return wait_for_statuses(db_url, direction="out", statuses=_FINAL, count=count, timeout=timeout)


def run_outbound(
    *, db: str, count: int, ack: str, baseline_seconds: float = 5.0, timeout: float = 600
) -> Report:
    report = Report("outbound", {"db": db, "count": count, "ack": ack})
    with pair(db, sync=ack == "sync") as p:
        # Distinct messages, as a real outbox holds: each its own BerichtIdentificatie and
        # referentienummer (bench/messages.py numbered_stuf).
        queue_messages(p, lambda n: numbered_stuf(SMALL, n + 1), count)
        # The baseline: the same TLS client load (WORKER_BATCH in flight) against the no-op server.
        base_port = free_port()
        mix = build_mix(p.agreement, p.rinis, mixed=False)
        with baseline_process(p.rinis.replace(port=base_port), p.work):
            base = asyncio.run(
                loadgen.closed_loop(
                    f"https://localhost:{base_port}/ebms",
                    mix,
                    expect="accepted",
                    concurrency=WORKER_BATCH,
                    seconds=baseline_seconds,
                )
            )
        rinis = endpoint_process(p.rinis, p.work, "rinis")
        gemeente = endpoint_process(p.gemeente, p.work, "gemeente")
        with rinis, gemeente:
            # The worker starts draining the queue as the server comes up; the clock starts when
            # the server listens (the worker's first claim may be a few milliseconds earlier).
            started = time.perf_counter()
            cpu_before = gemeente.cpu_seconds(), rinis.cpu_seconds()
            counts = wait_until_final(p.gemeente_db, count, timeout)
            elapsed = time.perf_counter() - started
            # CPU per message of each server over the same interval (its koppeltabel catch-up
            # and the counterpart's receiving included: both share the machine's cores).
            sender_cpu = (gemeente.cpu_seconds() - cpu_before[0]) * 1000 / count
            partner_cpu = (rinis.cpu_seconds() - cpu_before[1]) * 1000 / count
    delivered = counts.get("Delivered", 0)
    failed = sum(n for s, n in counts.items() if s != "Delivered")
    report.add(
        target="baseline (no-op, 10 in flight)",
        messages=base.sent,
        delivered=base.ok,
        seconds=round(base.elapsed, 2),
        msg_per_s=round(base.rate, 1),
        vs_baseline=1.0,
        failed=sum(base.errors.values()),
    )
    rate = delivered / elapsed if elapsed else 0.0
    report.add(
        target=f"endpoint send worker ({ack} acks)",
        messages=count,
        delivered=delivered,
        seconds=round(elapsed, 2),
        msg_per_s=round(rate, 1),
        vs_baseline=ratio(rate, base.rate),
        failed=failed,
        sender_cpu_ms=round(sender_cpu, 2),
        partner_cpu_ms=round(partner_cpu, 2),
    )
    report.note(
        "seconds: from the sending server listening until every message is final (polled every 0.1 s)"
    )
    report.note("sender_cpu_ms / partner_cpu_ms: server CPU (user+system) over that interval per message")
    if failed or delivered < count:
        report.note(f"NOT ALL DELIVERED: statuses {counts}")
    return report


def queue_messages_more(p: Pair, stuf: bytes) -> None:
    """One more message on an already migrated database with the CPA imported."""
    database = Database(p.gemeente_db)
    try:
        ids = UuidIdGenerator(host="gemeente.bench.test")
        submit_message(
            p.gemeente,
            database,
            cpa_id=p.agreement.cpa_id,
            service=SERVICE,
            action=ACTION_DI01,
            parts=[NewPart(f"{ids.uuid()}@bench.test", "text/xml", stuf)],
            ids=ids,
            clock=SystemClock(),
        )
    finally:
        database.dispose()
