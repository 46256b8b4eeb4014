"""A sampling profile of the endpoint while it receives osb-rm messages with sync acks.

py-spy (``pip install py-spy``) attaches to the running ``ggk-ebms serve`` process from outside,
so the server runs unmodified and unslowed (``--nonblocking``). It samples the thread holding the
GIL (``--gil``): one server process runs Python on one core at a time, so those samples are where
its CPU goes; waiting for the database or the network is not counted. The raw stacks are then
summed two ways:

* by stage of the inbound hot path (the steps of pipeline/inbound.py and inbound_decision.py, and
  the HTTP/TLS work around them): the share of all samples spent inside that step, callees included;
* by library of the innermost Python frame (self time): where the CPU actually goes.

The raw stacks stay in bench/results/ for a flame graph (e.g. speedscope, inferno).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench import loadgen
from bench.common import RESULTS_DIR, Report
from bench.databases import private_database
from bench.messages import MessageMix, build_mix
from bench.servers import endpoint_process, free_port, party_settings
from bench.setup import count_messages, inbound_cpa, work_folder

COLUMNS: Final = ("group", "name", "share_pct", "samples")

# (label, (function, file suffix) alternatives): steps of InboundPipeline and the transport around
# them. A small request runs as ``handle_async`` on the event loop and its commit in the store's
# writer thread (``_write_slots``), a large one as ``handle`` in a pool thread: both count.
_COMMIT = ("_write_slots", "ggk_ebms/store/group_commit.py")
STAGES: Final = (
    (
        "pipeline total (InboundPipeline.handle/handle_async + commit)",
        (
            ("handle", "ggk_ebms/pipeline/inbound.py"),
            ("handle_async", "ggk_ebms/pipeline/inbound.py"),
            _COMMIT,
        ),
    ),
    ("MIME split (split_body)", (("split_body", "ggk_ebms/mime/related.py"),)),
    ("envelope parse + XSD (parse_envelope_tree)", (("parse_envelope_tree", "ggk_ebms/ebms/parse.py"),)),
    ("CPA lookup (AgreementCache.get)", (("get", "ggk_ebms/pipeline/agreements.py"),)),
    ("client certificate check (authenticate)", (("authenticate", "ggk_ebms/pipeline/inbound_decision.py"),)),
    ("duplicate check (MessageStore.find)", (("find", "ggk_ebms/store/messages.py"),)),
    ("content digest", (("content_digest", "ggk_ebms/ebms/build.py"),)),
    ("CPA validation (validate_inbound)", (("validate_inbound", "ggk_ebms/ebms/validate.py"),)),
    ("inbound decision (decide)", (("decide", "ggk_ebms/pipeline/inbound_decision.py"),)),
    ("Acknowledgment build (_accept)", (("_accept", "ggk_ebms/pipeline/inbound_decision.py"),)),
    ("signing our signal (_signed)", (("_signed", "ggk_ebms/pipeline/inbound.py"),)),
    (
        "store transaction (MessageStore.receive + group commit)",
        (("receive", "ggk_ebms/store/messages.py"), _COMMIT),
    ),
    ("request body read (_read_capped)", (("_read_capped", "ggk_ebms/server/app.py"),)),
    ("peer certificate (_peer_identity)", (("_peer_identity", "ggk_ebms/server/app.py"),)),
)
# Library of a file path, for self time; the first match wins.
LIBRARIES: Final = (
    ("ggk_ebms/store/", "ggk_ebms.store"),
    ("ggk_ebms/ebms/", "ggk_ebms.ebms"),
    ("ggk_ebms/mime/", "ggk_ebms.mime"),
    ("ggk_ebms/security/", "ggk_ebms.security"),
    ("ggk_ebms/pipeline/", "ggk_ebms.pipeline"),
    ("ggk_ebms/cpa/", "ggk_ebms.cpa"),
    ("ggk_ebms/", "ggk_ebms (other)"),
    ("/sqlalchemy/", "sqlalchemy"),
    ("/psycopg", "psycopg"),
    ("/sqlite3/", "sqlite3"),
    ("/aiohttp/", "aiohttp"),
    ("/multidict/", "aiohttp"),
    ("/yarl/", "aiohttp"),
    ("sslproto.py", "TLS (ssl)"),
    ("/ssl.py", "TLS (ssl)"),
    ("/asyncio/", "asyncio"),
    ("/concurrent/", "threads"),
    ("/threading.py", "threads"),
    ("/logging/", "logging"),
    ("/lxml/", "lxml"),
    ("/cryptography/", "cryptography"),
    ("/email/", "email"),
)


@dataclass(frozen=True)
class Frame:
    function: str
    path: str


def parse_frame(text: str) -> Frame:
    """``function (path:line)`` as py-spy writes a frame in its raw format."""
    if text.endswith(")") and " (" in text:
        function, _, where = text[:-1].rpartition(" (")
        return Frame(function, where.rsplit(":", 1)[0])
    return Frame(text, "")


def read_raw(path: Path) -> list[tuple[list[Frame], int]]:
    """py-spy raw output: one ``frame;frame;...;leaf count`` line per distinct stack."""
    stacks = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append(([parse_frame(f) for f in stack.split(";")], int(count)))
    return stacks


def _named(frame: Frame, function: str) -> bool:
    # py-spy names methods Class.method
    return frame.function == function or frame.function.endswith("." + function)


def library_of(path: str) -> str:
    path = "/" + path  # py-spy shows paths relative to site-packages or the stdlib
    for marker, name in LIBRARIES:
        if marker in path:
            return name
    return "other" if path else "native/unknown"


def summarise(
    stacks: list[tuple[list[Frame], int]],
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(total samples, stage samples in STAGES order, self samples per library, largest first)."""
    total = sum(n for _, n in stacks)
    stages: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    for frames, n in stacks:
        for label, places in STAGES:
            if any(
                _named(f, function) and f.path.endswith(suffix) for f in frames for function, suffix in places
            ):
                stages[label] += n
        # Self time: the innermost frame; a frame without a path (a thread root) counts as its caller.
        leaf = next((f for f in reversed(frames) if f.path), frames[-1])
        libraries[library_of(leaf.path)] += n
    return total, [(label, stages[label]) for label, _ in STAGES], libraries.most_common()


def _load_in_thread(url: str, mix: MessageMix, seconds: float, concurrency: int) -> list[loadgen.LoadResult]:
    results: list[loadgen.LoadResult] = []

    def work() -> None:
        results.append(
            asyncio.run(loadgen.closed_loop(url, mix, expect="ack", concurrency=concurrency, seconds=seconds))
        )

    thread = threading.Thread(target=work, name="bench-load")
    thread.start()
    thread.join()
    return results


def run_profile(*, db: str, seconds: float, concurrency: int, rate: int = 250) -> Report:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise FileNotFoundError("py-spy is not installed: .venv/bin/pip install py-spy")
    report = Report("profile", {"db": db, "seconds": seconds, "concurrency": concurrency, "rate": rate})
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    raw = RESULTS_DIR / f"profile-{db}-{time.strftime('%Y%m%dT%H%M%S')}.txt"
    with work_folder() as work, private_database(db, work, "gemeente") as db_url:
        port = free_port()
        cpa_dir, agreement = inbound_cpa(work, sync=True, port=port)
        gemeente = party_settings("gemeente", work, db_url, cpa_dir, port)
        mix = build_mix(agreement, party_settings("rinis", work, "sqlite://", cpa_dir, 0), mixed=False)
        url = f"https://localhost:{port}/ebms"
        with endpoint_process(gemeente, work, "gemeente") as server:
            asyncio.run(loadgen.warm_up(url, mix, expect="ack"))
            # py-spy samples for all but the first and last half second of the load.
            spy = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    str(max(1, int(seconds - 1))),
                    "--rate",
                    str(rate),
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            loads = _load_in_thread(url, mix, seconds, concurrency)
            _, err = spy.communicate(timeout=60)
            if spy.returncode != 0 or not raw.exists():
                raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
        stored = count_messages(db_url, direction="in", kind="business")
    load = loads[0]
    total, stages, libraries = summarise(read_raw(raw))
    report.note(
        f"{load.ok} messages at {load.rate:.1f} msg/s during the profile, "
        f"{sum(load.errors.values())} errors; {stored} stored in all (warm-up included); "
        f"{total} samples of the thread holding the GIL; raw stacks: {raw}"
    )
    for label, n in stages:
        report.add(
            group="stage", name=label, share_pct=round(100 * n / total, 1) if total else 0.0, samples=n
        )
    for name, n in libraries[:12]:
        report.add(group="self", name=name, share_pct=round(100 * n / total, 1) if total else 0.0, samples=n)
    return report
