"""End to end: RINIS sends Di01 heenberichten, the gemeente receives them (sync Acknowledgment),
its delivery worker unwraps the StUF envelope, routes it and writes it to a directory target.

The clock runs from the first message sent until every received message is final in the
gemeente's log (Forwarded/Processed, or Failed); the rate is messages delivered per second of
that interval. The load is ``count`` messages from the load generator at ``concurrency``; the
no-op baseline gets the same count, so the ratio says what receiving plus delivering costs next
to only moving the bytes over TLS.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Final

from bench import loadgen
from bench.common import GEMEENTE, RINIS, Report, ratio
from bench.databases import private_database
from bench.messages import build_mix
from bench.servers import baseline_process, endpoint_process, free_port, party_settings
from bench.setup import inbound_cpa, status_reasons, wait_for_statuses, work_folder
from ggk_ebms.config import Settings

COLUMNS: Final = ("target", "messages", "delivered", "seconds", "msg_per_s", "vs_baseline", "failed", "files")
_FINAL: Final = ("Forwarded", "Processed", "Failed")


def routes_file(work: Path, inbox: Path) -> Path:
    """A routing table: every berichttype RINIS sends for gemeente 0363 goes to ``inbox``."""
    path = work / "routes.toml"
    path.write_text(
        "\n".join(
            [
                "[endpoint]",
                'gemeentecodes = ["0363"]',
                "[[sender]]",
                f'id = "{RINIS}"',
                'gemeentecodes = ["*"]',
                "[[route]]",
                'name = "bench-0363"',
                'gemeentecode = "0363"',
                'berichttype = "*"',
                'status = "actief"',
                'channel = "Digikoppeling"',
                'stuf_version = "2.1"',
                'payload_version = "3.2"',
                f'target = {{ type = "directory", path = "{inbox}", '
                "write_envelope = false, write_metadata = false }",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return path


def delivering_gemeente(
    work: Path, db_url: str, cpa_dir: Path, port: int, processes: int = 1, worker_processes: int = 0
) -> tuple[Settings, Path]:
    """The gemeente's settings with its delivery worker on, delivering into the returned inbox."""
    inbox = work / "inbox"
    inbox.mkdir()
    settings = party_settings(
        "gemeente",
        work,
        db_url,
        cpa_dir,
        port,
        party_ids=[GEMEENTE],
        worker_enabled=True,
        worker_poll_seconds=0.1,
        routes_file=routes_file(work, inbox),
        processes=processes,
        worker_processes=worker_processes,
    )
    return settings, inbox


def wait_until_delivered(db_url: str, count: int, timeout: float) -> dict[str, int]:
    """Status counts once ``count`` received business messages are final (or at ``timeout``)."""
    return wait_for_statuses(db_url, direction="in", statuses=_FINAL, count=count, timeout=timeout)


def run_endtoend(
    *,
    db: str,
    count: int,
    concurrency: int,
    processes: int = 1,
    worker_processes: int = 0,
    timeout: float = 600,
) -> Report:
    report = Report(
        "endtoend",
        {
            "db": db,
            "count": count,
            "concurrency": concurrency,
            "processes": processes,
            "worker_processes": worker_processes,
        },
    )
    with work_folder() as work, private_database(db, work, "gemeente") as db_url:
        port, base_port = free_port(), free_port()
        cpa_dir, agreement = inbound_cpa(work, sync=True, port=port)
        gemeente, inbox = delivering_gemeente(work, db_url, cpa_dir, port, processes, worker_processes)
        # WMO305 (aanbieder to gemeente): what a gemeente receives and delivers; a WMO301 is one
        # it sends, and delivery rightly refuses one addressed to it.
        rinis = party_settings("rinis", work, "sqlite://", cpa_dir, 0)
        mix = build_mix(agreement, rinis, mixed=False, berichttype="WMO305")
        with baseline_process(gemeente.replace(port=base_port), work, processes=processes):
            base = asyncio.run(
                loadgen.closed_loop(
                    f"https://localhost:{base_port}/ebms",
                    mix,
                    expect="accepted",
                    concurrency=concurrency,
                    count=count,
                )
            )
        with endpoint_process(gemeente, work, "gemeente"):
            started = time.perf_counter()
            sent = asyncio.run(
                loadgen.closed_loop(
                    f"https://localhost:{port}/ebms", mix, expect="ack", concurrency=concurrency, count=count
                )
            )
            counts = wait_until_delivered(db_url, sent.ok, timeout)
            elapsed = time.perf_counter() - started
        files = sum(1 for _ in inbox.rglob("*") if _.is_file())
        reasons = status_reasons(db_url, direction="in", kind="business")
    delivered = counts.get("Forwarded", 0) + counts.get("Processed", 0)
    failed = sum(n for s, n in counts.items() if s not in ("Forwarded", "Processed"))
    report.add(
        target="baseline (no-op)",
        messages=base.sent,
        delivered=base.ok,
        seconds=round(base.elapsed, 2),
        msg_per_s=round(base.rate, 1),
        vs_baseline=1.0,
        failed=sum(base.errors.values()),
    )
    rate = delivered / elapsed if elapsed else 0.0
    report.add(
        target="endpoint receive + deliver",
        messages=sent.sent,
        delivered=delivered,
        seconds=round(elapsed, 2),
        msg_per_s=round(rate, 1),
        vs_baseline=ratio(rate, base.rate),
        failed=failed + sum(sent.errors.values()),
        files=files,
    )
    report.note(f"receive phase alone: {sent.ok} acknowledged at {sent.rate:.1f} msg/s")
    if failed or delivered < count:
        report.note(f"NOT ALL DELIVERED: statuses {counts}; load errors {dict(sent.errors)}")
        report.note("commonest outcomes: " + " | ".join(reasons))
    return report
