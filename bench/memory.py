"""Memory: peak RSS growth for one large StUF envelope, on every side it passes, beside a baseline.

Three measurements, each a separate server process whose peak resident set (VmHWM) is set back
to its current size just before the message and read once the message is final:

- baseline: the no-op TLS server (bench/baseline.py) reading the same ebMS request: what only
  moving the bytes over TLS and HTTP costs;
- receiving + delivering: a gemeente endpoint receives a WMO305 in a Di01 of ``size`` bytes from
  the load generator (sync Acknowledgment), its delivery worker unwraps, checks, routes and writes
  the payload to a directory target;
- sending: the gemeente's send worker sends a Di01 of ``size`` bytes to RINIS (a second endpoint,
  which receives and stores it: that process is the fourth row).

The figure is growth / message size (issue targets: at most 3x, toward 2x).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from bench import loadgen
from bench.common import Report
from bench.databases import private_database
from bench.endtoend import delivering_gemeente, wait_until_delivered
from bench.messages import SMALL, MessageMix, ebms_template, stuf_di01
from bench.outbound import pair, queue_messages, queue_messages_more, wait_until_final
from bench.servers import (
    ServerProcess,
    baseline_process,
    endpoint_process,
    free_port,
    party_settings,
    peak_rss_bytes,
    reset_peak,
    rss_bytes,
)
from bench.setup import inbound_cpa, work_folder

MEMORY_COLUMNS: Final = (
    "side",
    "message_bytes",
    "rss_before_mb",
    "peak_rss_mb",
    "growth_mb",
    "growth_x_message",
)


@contextmanager
def _watched(report: Report, side: str, server: ServerProcess, size: int) -> Iterator[None]:
    """Reset the peak before the body of the with-block, add the growth row after it."""
    time.sleep(0.5)  # let the warm-up's garbage settle before the baseline RSS is read
    reset_peak(server.pid)
    before = rss_bytes(server.pid)
    yield
    time.sleep(0.5)  # a last allocation after the final status (the reply, a log line)
    peak = peak_rss_bytes(server.pid)
    growth = max(0, peak - before)
    report.add(
        side=side,
        message_bytes=size,
        rss_before_mb=round(before / 1e6, 1),
        peak_rss_mb=round(peak / 1e6, 1),
        growth_mb=round(growth / 1e6, 1),
        growth_x_message=round(growth / size, 2),
    )


def _receive_and_deliver(report: Report, db: str, size: int, timeout: float) -> None:
    with work_folder() as work, private_database(db, work, "gemeente") as db_url:
        port, base_port = free_port(), free_port()
        cpa_dir, agreement = inbound_cpa(work, sync=True, port=port)
        gemeente, inbox = delivering_gemeente(work, db_url, cpa_dir, port)
        rinis = party_settings("rinis", work, "sqlite://", cpa_dir, 0)
        small = MessageMix(ebms_template(agreement, stuf_di01(SMALL, "WMO305"), sender=rinis), None)
        stuf = stuf_di01(size, "WMO305")
        large = MessageMix(ebms_template(agreement, stuf, sender=rinis), None)
        del stuf
        with baseline_process(gemeente.replace(port=base_port), work) as base:
            base_url = f"https://localhost:{base_port}/ebms"
            asyncio.run(loadgen.closed_loop(base_url, small, expect="accepted", concurrency=1, count=3))
            with _watched(report, "baseline: no-op TLS server receiving", base, len(large.small.body)):
                asyncio.run(loadgen.closed_loop(base_url, large, expect="accepted", concurrency=1, count=1))
        with endpoint_process(gemeente, work, "gemeente") as server:
            url = f"https://localhost:{port}/ebms"
            asyncio.run(loadgen.closed_loop(url, small, expect="ack", concurrency=1, count=3))
            wait_until_delivered(db_url, 3, timeout)
            with _watched(report, "gemeente receiving + delivering", server, size):
                sent = asyncio.run(loadgen.closed_loop(url, large, expect="ack", concurrency=1, count=1))
                counts = wait_until_delivered(db_url, 4, timeout)
        files = sorted(p.stat().st_size for p in Path(inbox).iterdir())
    if sent.ok != 1 or counts.get("Forwarded", 0) != 4:
        report.note(f"RECEIVE NOT DELIVERED: load {sent.ok} ok {dict(sent.errors)}; statuses {counts}")
    report.note(f"delivered payload files (bytes): {files[-1] if files else 'none'} largest")


def _send(report: Report, db: str, size: int, timeout: float) -> None:
    stuf = stuf_di01(size)
    with pair(db, sync=True) as p:
        queue_messages(p, stuf_di01(SMALL), 3)  # warm-up: imports, caches, pools on both sides
        with (
            endpoint_process(p.rinis, p.work, "rinis") as rinis,
            endpoint_process(p.gemeente, p.work, "gemeente") as gemeente,
        ):
            wait_until_final(p.gemeente_db, 3, timeout)
            with (
                _watched(report, "gemeente sending", gemeente, len(stuf)),
                _watched(report, "rinis receiving (stores only)", rinis, len(stuf)),
            ):
                queue_messages_more(p, stuf)  # the gemeente's worker picks it up at its next poll
                counts = wait_until_final(p.gemeente_db, 4, timeout)
    if counts.get("Delivered", 0) != 4:
        report.note(f"SEND NOT DELIVERED: statuses {counts}")


def run_memory(*, db: str, size: int = 24_999_000, timeout: float = 300) -> Report:
    """Peak RSS growth for one StUF envelope of ``size`` bytes: baseline, receive+deliver, send."""
    report = Report("memory", {"db": db, "size": size})
    _receive_and_deliver(report, db, size, timeout)
    _send(report, db, size, timeout)
    report.note("growth = peak RSS (VmHWM, reset just before) minus RSS before the message")
    report.note("baseline row: message_bytes is the whole ebMS request (MIME, SOAP header, envelope)")
    return report
