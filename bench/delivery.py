"""The delivery worker alone, in this process: no TLS, no HTTP, a real database.

``count`` WMO305 heenberichten are received first through ``InboundPipeline.handle`` (each stores
the message and queues its 'deliver' job, as the endpoint does); then the clock runs while
``DeliveryWorker.run_once`` drains the queue into a directory target. Wall and CPU time per
message are the worker's own cost, the ceiling of the delivery half of the end-to-end scenario.

The baseline in the same run writes the same number of payload files straight into a folder
(the directory target's bytes without the worker around them), so the ratio says what claiming,
unwrapping, routing and recording the outcome cost next to the file write itself.
``--cprofile`` adds the functions with the most cumulative time.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import time
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bench.common import DEV_CERTS, Report, ratio
from bench.databases import private_database
from bench.endtoend import routes_file
from bench.messages import build_mix
from bench.servers import party_settings
from bench.setup import inbound_cpa, work_folder
from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.delivery.worker import DeliveryWorker
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.pipeline.inbound import InboundPipeline
from ggk_ebms.pipeline.reply import InboundRequest
from ggk_ebms.security.identity import PeerIdentity
from ggk_ebms.server.autoimport import import_cpa_dir, import_routes_file
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore

COLUMNS: Final = (
    "target",
    "db",
    "messages",
    "delivered",
    "wall_ms_per_msg",
    "cpu_ms_per_msg",
    "msg_per_s",
    "vs_baseline",
)
_FILE_BYTES: Final = 2048


def _baseline(folder: Path, count: int) -> tuple[float, float]:
    """Write ``count`` files of a small payload the way a directory target does (new file, fsync off)."""
    folder.mkdir(parents=True)
    data = os.urandom(_FILE_BYTES)
    wall, cpu = time.perf_counter(), time.process_time()
    for n in range(count):
        partial = folder / f".{n}.part"
        partial.write_bytes(data)
        partial.replace(folder / f"{n}.xml")
    return time.perf_counter() - wall, time.process_time() - cpu


def run_delivery(*, db: str, count: int, profile: bool = False) -> Report:
    report = Report("delivery", {"db": db, "count": count})
    with work_folder() as work, private_database(db, work, "gemeente") as url:
        cpa_dir, agreement = inbound_cpa(work, sync=True, port=1)
        inbox = work / "inbox"
        inbox.mkdir()
        settings = party_settings(
            "gemeente", work, url, cpa_dir, 1, worker_enabled=True, routes_file=routes_file(work, inbox)
        )
        base_wall, base_cpu = _baseline(work / "baseline", count)
        database = Database(url)
        try:
            database.upgrade()
            for line in [*import_cpa_dir(settings, database), *import_routes_file(settings, database)]:
                if "not imported" in line:
                    raise RuntimeError(line)
            clock, ids = SystemClock(), UuidIdGenerator(host="gemeente.bench.test")
            pipeline = InboundPipeline(
                settings,
                MessageStore(database),
                AgreementCache(CpaRepository(database), max_cpa_bytes=settings.max_cpa_bytes),
                clock=clock,
                ids=ids,
            )
            pem = (DEV_CERTS / "rinis" / "client.pem").read_bytes()
            peer = PeerIdentity.from_der(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER))
            rinis = party_settings("rinis", work, "sqlite://", cpa_dir, 0)
            mix = build_mix(agreement, rinis, mixed=False, berichttype="WMO305")
            for _ in range(count):
                message_id, template = mix.next()
                reply = pipeline.handle(
                    InboundRequest(
                        content_type=template.content_type,
                        soap_action='"ebXML"',
                        body=template.body_for(message_id),
                        peer=peer,
                        remote="127.0.0.1",
                    )
                )
                if reply.status != 200:
                    raise RuntimeError(f"pipeline answered HTTP {reply.status}: {reply.body[:300]!r}")
            worker = DeliveryWorker(settings, database, clock=clock, ids=ids)
            profiler = cProfile.Profile() if profile else None
            wall, cpu = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            handled = worker.run_once()
            if profiler is not None:
                profiler.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            database.dispose()
        delivered = sum(1 for p in inbox.rglob("*") if p.is_file())
    report.add(
        target="baseline (write files)",
        db=db,
        messages=count,
        delivered=count,
        wall_ms_per_msg=round(base_wall * 1000 / count, 3),
        cpu_ms_per_msg=round(base_cpu * 1000 / count, 3),
        msg_per_s=round(count / base_wall, 1),
        vs_baseline=1.0,
    )
    report.add(
        target="delivery worker",
        db=db,
        messages=handled,
        delivered=delivered,
        wall_ms_per_msg=round(wall * 1000 / count, 3),
        cpu_ms_per_msg=round(cpu * 1000 / count, 3),
        msg_per_s=round(count / wall, 1),
        vs_baseline=ratio(count / wall, count / base_wall),
    )
    if delivered != count:
        report.note(f"NOT ALL DELIVERED: {delivered} files for {count} messages ({handled} jobs handled)")
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        report.note("cProfile (slows the run; the figures above are with it on):\n" + out.getvalue())
    return report
