"""``python -m bench <scenario>``: run one benchmark, print its table, write its JSON.

See bench/README.md for the one command per benchmark and docs/performance.md for the method.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from bench.berichtenlog import COLUMNS as BERICHTENLOG_COLUMNS
from bench.berichtenlog import run_berichtenlog
from bench.cli import COLUMNS as CLI_COLUMNS
from bench.cli import run_cli
from bench.common import Report
from bench.databases import BACKENDS, DatabaseUnavailable
from bench.delivery import COLUMNS as DELIVERY_COLUMNS
from bench.delivery import run_delivery
from bench.endtoend import COLUMNS as ENDTOEND_COLUMNS
from bench.endtoend import run_endtoend
from bench.groups import COLUMNS as GROUPS_COLUMNS
from bench.groups import run_groups
from bench.inbound import COLUMNS as INBOUND_COLUMNS
from bench.inbound import InboundArgs, run_inbound
from bench.memory import MEMORY_COLUMNS, run_memory
from bench.nodes import COLUMNS as NODES_COLUMNS
from bench.nodes import run_nodes
from bench.outbound import COLUMNS as OUTBOUND_COLUMNS
from bench.outbound import run_outbound
from bench.pipeline import COLUMNS as PIPELINE_COLUMNS
from bench.pipeline import run_pipeline
from bench.profile import COLUMNS as PROFILE_COLUMNS
from bench.profile import run_profile
from bench.sigcheck import COLUMNS as SIGCHECK_COLUMNS
from bench.sigcheck import run_sigcheck
from bench.soak import COLUMNS as SOAK_COLUMNS
from bench.soak import run_soak


def _print(report: Report, columns: Sequence[str], write: bool) -> None:
    print(f"\n== {report.scenario} {report.arguments}")
    print(report.table(columns))
    for note in report.notes:
        print(f"note: {note}")
    if write:
        print(f"results: {report.write()}")


def _inbound(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    args = InboundArgs(
        db=ns.db,
        ack=ns.ack,
        seconds=ns.seconds,
        concurrency=ns.concurrency,
        mix=ns.mix,
        processes=ns.processes,
        profile=ns.profile,
        pool=ns.pool,
        latency=not ns.no_latency,
        latency_rate=ns.latency_rate,
    )
    return run_inbound(args), INBOUND_COLUMNS


def _scaling(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    combined = Report("scaling", {"db": ns.db, "ack": ns.ack, "seconds": ns.seconds})
    for processes in (1, 2):
        args = InboundArgs(
            db=ns.db,
            ack=ns.ack,
            seconds=ns.seconds,
            concurrency=ns.concurrency,
            processes=processes,
            latency=False,
        )
        part = run_inbound(args, name="scaling")
        combined.rows += part.rows
        combined.notes += [n for n in part.notes if n not in combined.notes]
    maxima = {(r["target"], r["processes"]): r["msg_per_s"] for r in combined.rows if r.get("phase") == "max"}
    for target in ("baseline", "endpoint"):
        one, two = maxima.get((target, 1)), maxima.get((target, 2))
        if one and two:
            combined.note(f"{target}: 2 processes give {two / one:.2f}x the rate of 1")
    return combined, INBOUND_COLUMNS


def _nodes(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    return run_nodes(db=ns.db, seconds=ns.seconds, concurrency=ns.concurrency), NODES_COLUMNS


def _profile(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    return run_profile(db=ns.db, seconds=ns.seconds, concurrency=ns.concurrency), PROFILE_COLUMNS


def _pipeline(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    return run_pipeline(db=ns.db, count=ns.count, profile=ns.cprofile, security=ns.profile), PIPELINE_COLUMNS


def _sigcheck(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    return run_sigcheck(count=ns.count), SIGCHECK_COLUMNS


def _groups(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    return run_groups(db=ns.db, threads=ns.threads, count=ns.count, signals=ns.signals), GROUPS_COLUMNS


def _outbound(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    return run_outbound(db=ns.db, count=ns.count, ack=ns.ack), OUTBOUND_COLUMNS


def _memory(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    return run_memory(db=ns.db, size=ns.size), MEMORY_COLUMNS


def _endtoend(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    report = run_endtoend(
        db=ns.db,
        count=ns.count,
        concurrency=ns.concurrency,
        processes=ns.processes,
        worker_processes=ns.worker_processes,
    )
    return report, ENDTOEND_COLUMNS


def _delivery(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    return run_delivery(db=ns.db, count=ns.count, profile=ns.cprofile), DELIVERY_COLUMNS


def _cli(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    return run_cli(runs=ns.runs), CLI_COLUMNS


def _berichtenlog(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    return run_berichtenlog(db=ns.db, count=ns.count, repeat=ns.repeat), BERICHTENLOG_COLUMNS


def _soak(ns: argparse.Namespace) -> tuple[Report, Sequence[str]]:
    return run_soak(db=ns.db, minutes=10.0 if ns.long else ns.minutes), SOAK_COLUMNS


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = root.add_subparsers(dest="scenario", required=True)

    def common(p: argparse.ArgumentParser, seconds: float = 10.0) -> None:
        p.add_argument("--db", choices=BACKENDS, default="sqlite", help="database backend")
        p.add_argument("--seconds", type=float, default=seconds, help="length of each measured phase")
        p.add_argument("--concurrency", type=int, default=16, help="messages in flight (closed loop)")
        p.add_argument("--no-write", action="store_true", help="print the table only, write no JSON")

    p = sub.add_parser("inbound", help="receive rate and latency vs the no-op baseline")
    common(p)
    p.add_argument("--ack", choices=("sync", "async"), default="sync")
    p.add_argument("--mix", choices=("small", "mixed"), default="small", help="mixed: 85%% 2 KB, 15%% 1 MB")
    p.add_argument("--processes", type=int, default=1, help="server processes sharing the port")
    p.add_argument("--profile", choices=("osb-rm", "osb-rm-s"), default="osb-rm", help="osb-rm-s: signed")
    p.add_argument("--pool", type=int, default=3000, help="osb-rm-s: messages signed ahead of the run")
    p.add_argument("--no-latency", action="store_true", help="skip the open-loop latency phase")
    p.add_argument(
        "--latency-rate",
        type=float,
        default=None,
        help="offered msg/s of the latency phase instead of half the maximum: the same load for "
        "two commits compared on a busy machine (CPU per message at equal load)",
    )
    p.set_defaults(run=_inbound)

    p = sub.add_parser("scaling", help="inbound max rate with 1 and 2 server processes")
    common(p)
    p.add_argument("--ack", choices=("sync", "async"), default="sync")
    p.set_defaults(run=_scaling)

    p = sub.add_parser("nodes", help="two serve nodes in network namespaces on one PostgreSQL vs one")
    common(p)
    p.set_defaults(run=_nodes, db="postgres")

    p = sub.add_parser("profile", help="py-spy profile of the inbound hot path (sync acks)")
    common(p, seconds=10.0)
    p.set_defaults(run=_profile)

    p = sub.add_parser("outbound", help="send worker: queued messages/s until all Delivered")
    p.add_argument("--db", choices=BACKENDS, default="sqlite", help="database backend")
    p.add_argument("--count", type=int, default=500, help="messages to queue and send")
    p.add_argument("--ack", choices=("sync", "async"), default="sync")
    p.add_argument("--no-write", action="store_true", help="print the table only, write no JSON")
    p.set_defaults(run=_outbound)

    p = sub.add_parser("memory", help="peak RSS growth receiving+delivering and sending 25 MB of StUF")
    p.add_argument("--db", choices=BACKENDS, default="sqlite", help="database backend")
    p.add_argument("--size", type=int, default=24_999_000, help="StUF envelope size in bytes")
    p.add_argument("--no-write", action="store_true", help="print the table only, write no JSON")
    p.set_defaults(run=_memory)

    p = sub.add_parser("endtoend", help="RINIS sends, the gemeente receives, unwraps, routes to a directory")
    common(p)
    p.add_argument("--count", type=int, default=500, help="messages to send")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server processes sharing the port, each with its delivery worker (2 or more: also "
        "the scheduled process, as serve runs them)",
    )
    p.add_argument(
        "--worker-processes",
        type=int,
        default=0,
        help="the send and delivery workers in this many processes of their own instead of in the "
        "server processes (setting worker_processes; with the scheduled process, as serve runs them)",
    )
    p.set_defaults(run=_endtoend)

    p = sub.add_parser("pipeline", help="InboundPipeline.handle in-process: ms per message, no TLS/HTTP")
    p.add_argument("--db", choices=BACKENDS, default="sqlite", help="database backend")
    p.add_argument("--count", type=int, default=500, help="messages to handle")
    p.add_argument("--cprofile", action="store_true", help="also print the top of a cProfile")
    p.add_argument(
        "--profile", choices=("osb-rm", "osb-rm-s"), default="osb-rm", help="osb-rm-s: signed messages"
    )
    p.add_argument("--no-write", action="store_true", help="print the table only, write no JSON")
    p.set_defaults(run=_pipeline)

    p = sub.add_parser("sigcheck", help="verify a message, sign its Ack: fast paths beside libxmlsec")
    p.add_argument("--count", type=int, default=200, help="operations per path and round (5 rounds)")
    p.add_argument("--no-write", action="store_true", help="print the table only, write no JSON")
    p.set_defaults(run=_sigcheck)

    p = sub.add_parser("delivery", help="DeliveryWorker.run_once in-process: queued jobs drained to a folder")
    p.add_argument("--db", choices=BACKENDS, default="sqlite", help="database backend")
    p.add_argument("--count", type=int, default=500, help="messages to receive, then deliver")
    p.add_argument("--cprofile", action="store_true", help="also print the top of a cProfile")
    p.add_argument("--no-write", action="store_true", help="print the table only, write no JSON")
    p.set_defaults(run=_delivery)

    p = sub.add_parser("groups", help="MessageStore.receive from N threads: group commit vs one commit each")
    p.add_argument("--db", choices=BACKENDS, default="sqlite", help="database backend")
    p.add_argument("--threads", type=int, default=8, help="threads receiving at the same time")
    p.add_argument("--count", type=int, default=150, help="receives per thread and phase")
    p.add_argument("--no-write", action="store_true", help="print the table only, write no JSON")
    p.add_argument(
        "--signals",
        action="store_true",
        help="receive asynchronous Acks of sent messages (lookup + effect), not business messages",
    )
    p.set_defaults(run=_groups)

    p = sub.add_parser("cli", help="ggk-ebms start-up: whole-process time per command vs python -c pass")
    p.add_argument("--runs", type=int, default=11, help="timed runs per command (after one warm-up)")
    p.add_argument("--no-write", action="store_true", help="print the table only, write no JSON")
    p.set_defaults(run=_cli)

    p = sub.add_parser("berichtenlog", help="filtered berichtenlog queries over a generated log")
    p.add_argument("--db", choices=BACKENDS, default="postgres", help="database backend")
    p.add_argument("--count", type=int, default=1_000_000, help="messages in the generated log")
    p.add_argument("--repeat", type=int, default=20, help="runs per query")
    p.add_argument("--no-write", action="store_true", help="print the table only, write no JSON")
    p.set_defaults(run=_berichtenlog)

    p = sub.add_parser("soak", help="mixed valid and hostile traffic; the server's RSS curve")
    p.add_argument("--db", choices=BACKENDS, default="sqlite", help="database backend")
    p.add_argument("--minutes", type=float, default=1.0, help="length of the run")
    p.add_argument("--long", action="store_true", help="the 10-minute run")
    p.add_argument("--no-write", action="store_true", help="print the table only, write no JSON")
    p.set_defaults(run=_soak)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    run: Callable[[argparse.Namespace], tuple[Report, Sequence[str]]] = ns.run
    try:
        report, columns = run(ns)
    except DatabaseUnavailable as exc:
        print(f"not run: {exc}", file=sys.stderr)
        return 2
    _print(report, columns, not ns.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
