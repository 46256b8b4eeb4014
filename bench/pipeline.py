"""The inbound pipeline alone, in this process: no TLS, no HTTP, one thread, a real database.

``InboundPipeline.handle`` gets the same requests the load generator sends (sync-ack osb-rm, the
RINIS client certificate as the TLS peer) one after the other. Wall and CPU time per message
tell the pipeline's own cost, the ceiling of one server process whatever the transport does;
``--cprofile`` adds the functions with the most cumulative time. This is what the optimisation
commits quote as their before/after figure.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bench.common import DEV_CERTS, Report
from bench.databases import private_database
from bench.messages import MessageMix, SignedPool, build_mix
from bench.servers import party_settings
from bench.setup import inbound_cpa, work_folder
from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.pipeline.inbound import InboundPipeline
from ggk_ebms.pipeline.reply import InboundRequest
from ggk_ebms.security.identity import PeerIdentity
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore

COLUMNS: Final = ("db", "profile", "messages", "wall_ms_per_msg", "cpu_ms_per_msg", "msg_per_s_one_thread")
_WARM_UP: Final = 20


def run_pipeline(*, db: str, count: int, profile: bool = False, security: str = "osb-rm") -> Report:
    """``security="osb-rm-s"``: signed messages (signed ahead of the run, as in ``bench inbound``),
    so the figure includes verifying them and signing our Acknowledgment."""
    report = Report("pipeline", {"db": db, "count": count, "profile": security})
    signed = security == "osb-rm-s"
    with work_folder() as work, private_database(db, work, "gemeente") as url:
        cpa_dir, agreement = inbound_cpa(work, sync=True, port=1, signed=signed)
        settings = party_settings("gemeente", work, url, cpa_dir, 1)
        database = Database(url)
        try:
            database.upgrade()
            for line in import_cpa_dir(settings, database):
                if "not imported" in line:
                    raise RuntimeError(line)
            pipeline = InboundPipeline(
                settings,
                MessageStore(database),
                AgreementCache(CpaRepository(database), max_cpa_bytes=settings.max_cpa_bytes),
                clock=SystemClock(),
                ids=UuidIdGenerator(host="gemeente.bench.test"),
            )
            pem = (DEV_CERTS / "rinis" / "client.pem").read_bytes()
            peer = PeerIdentity.from_der(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER))
            rinis = party_settings("rinis", work, "sqlite://", cpa_dir, 0)
            mix: MessageMix | SignedPool = (
                SignedPool(agreement, rinis, count + _WARM_UP)
                if signed
                else build_mix(agreement, rinis, mixed=False)
            )

            def one() -> None:
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
                if reply.status != 200 or b"Acknowledgment" not in reply.body:
                    raise RuntimeError(f"pipeline answered HTTP {reply.status}: {reply.body[:300]!r}")

            for _ in range(_WARM_UP):
                one()
            profiler = cProfile.Profile() if profile else None
            wall, cpu = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            for _ in range(count):
                one()
            if profiler is not None:
                profiler.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            database.dispose()
    report.add(
        db=db,
        profile=security,
        messages=count,
        wall_ms_per_msg=round(wall * 1000 / count, 3),
        cpu_ms_per_msg=round(cpu * 1000 / count, 3),
        msg_per_s_one_thread=round(count / wall, 1),
    )
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        report.note("cProfile (slows the run; the figures above are with it on):\n" + out.getvalue())
    return report
