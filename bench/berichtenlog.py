"""``python -m bench berichtenlog``: filtered berichtenlog queries over a log of N messages.

The issue's target: a filtered query over 1,000,000 messages answers within 200 ms on PostgreSQL.
The log is generated in the database itself (``generate_series`` on PostgreSQL, a recursive CTE on
SQLite): N business messages spread evenly over the last 60 days (the portal's retention), half
received and half sent, ten berichttypes, twenty gemeentecodes, one in a hundred Failed, each
with its StUF stuurgegevens row; then ANALYZE. Each query is the real use case
(``services.berichtenlog.berichtenlog``, first page of 50) run ``--repeat`` times; the table shows
the median and the slowest run in ms.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Final

import sqlalchemy as sa

from bench.common import Report
from bench.databases import private_database
from ggk_ebms.clock import SystemClock
from ggk_ebms.config import Settings
from ggk_ebms.services.berichtenlog import LogFilter, berichtenlog
from ggk_ebms.services.context import ServiceContext
from ggk_ebms.store.db import Database

COLUMNS: Final = ("query", "rows", "median_ms", "max_ms")
BERICHTTYPES: Final = (
    "WMO301",
    "WMO302",
    "WMO305",
    "WMO307",
    "WMO315",
    "WMO317",
    "JW301",
    "JW305",
    "JW315",
    "JW317",
)
SPAN_SECONDS: Final = 60 * 24 * 3600

_PG_SERIES: Final = "SELECT i FROM generate_series(1, :n) AS i"
_SQLITE_SERIES: Final = (
    "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) SELECT i FROM s"
)


def _generate(database: Database, count: int) -> None:
    pg = database.backend == "postgresql"
    series = _PG_SERIES if pg else _SQLITE_SERIES
    # Message i was stored i/N of 60 days ago: newest first by pk descending too.
    at = (
        "now() - make_interval(secs => (i::float8 * :span / :n))"
        if pg
        else "strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (i * :span / :n) || ' seconds')"
    )
    false = "false" if pg else "0"
    with database.connection() as conn:
        conn.execute(
            sa.text(
                f"""
                INSERT INTO message (direction, message_id, cpa_id, conversation_id, from_party_id,
                    to_party_id, service, action, kind, timestamp, status, sync_reply, created_at, updated_at)
                SELECT CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' END, 'bench-' || i || '@bench',
                    'bench-cpa', 'conv-' || i, 'from', 'to', 'ggk:berichtenverkeer:1.0', 'bench', 'business',
                    t, CASE WHEN i % 100 = 0 THEN 'Failed'
                            WHEN i % 2 = 0 THEN 'Processed' ELSE 'Delivered' END,
                    {false}, t, t
                FROM (SELECT i, {at} AS t FROM ({series}) AS g) AS s
                """
            ),
            {"n": count, "span": SPAN_SECONDS},
        )
        codes = ", ".join(f"'{c}'" for c in BERICHTTYPES)
        pick = (
            f"(ARRAY[{codes}])[(pk % 10) + 1]"
            if pg
            else f"json_extract('[{codes.replace(chr(39), chr(34))}]', '$[' || (pk % 10) || ']')"
        )
        gemeente = (
            "lpad(((pk * 7) % 20 + 300)::text, 4, '0')" if pg else "printf('%04d', (pk * 7) % 20 + 300)"
        )
        conn.execute(
            sa.text(
                f"""
                INSERT INTO stuf_message (message_pk, direction, berichtcode, gemeentecode, berichttype,
                    referentienummer, zender, ontvanger, cross_ref_unknown, created_at, updated_at)
                SELECT pk, direction, 'Di01', {gemeente}, {pick}, 'ref-' || pk, 'zender', 'ontvanger',
                    {false}, created_at, updated_at
                FROM message
                """
            )
        )
        conn.execute(sa.text("ANALYZE"))


def _measure(run: Callable[[], int], repeat: int) -> tuple[int, float, float]:
    run()  # warm the caches and the statement cache: the steady state is what users see
    times = []
    rows = 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows = run()
        times.append((time.perf_counter() - start) * 1000)
    return rows, statistics.median(times), max(times)


def run_berichtenlog(*, db: str, count: int, repeat: int = 20, work: Path | None = None) -> Report:
    report = Report("berichtenlog", {"db": db, "count": count, "repeat": repeat})
    with private_database(db, work or Path("var/bench"), "berichtenlog") as url:
        database = Database(url)
        try:
            database.upgrade()
            started = time.perf_counter()
            _generate(database, count)
            report.note(
                f"generated {count} messages with stuurgegevens in {time.perf_counter() - started:.1f} s"
            )
            ctx = ServiceContext(database=database, settings=Settings(), actor="bench", clock=SystemClock())
            now = ctx.clock.now()
            queries: dict[str, LogFilter] = {
                "default (7 days back, page 1)": LogFilter(),
                "berichttype WMO301, 7 days": LogFilter(berichttype="WMO301"),
                "berichttype + gemeentecode, 30 days": LogFilter(
                    berichttype="JW315", gemeentecode="0306", since=now - timedelta(days=30)
                ),
                "one day 20 days ago, berichttype": LogFilter(
                    since=now - timedelta(days=21), until=now - timedelta(days=20), berichttype="WMO305"
                ),
                "referentienummer, 60 days": LogFilter(
                    referentienummer=f"ref-{count // 2}", since=now - timedelta(days=61)
                ),
                "received Failed, 60 days": LogFilter(
                    direction="in", status="Failed", since=now - timedelta(days=61)
                ),
                "page 20 of berichttype, 60 days": LogFilter(
                    berichttype="JW301", since=now - timedelta(days=61), offset=950
                ),
            }
            for name, query in queries.items():
                rows, median, slowest = _measure(lambda q=query: len(berichtenlog(ctx, q).rows), repeat)
                report.add(query=name, rows=rows, median_ms=round(median, 1), max_ms=round(slowest, 1))
            over = [r["query"] for r in report.rows if r["median_ms"] > 200]
            report.note(
                "every median within 200 ms" if not over else f"median over 200 ms: {', '.join(over)}"
            )
        finally:
            database.dispose()
    return report
