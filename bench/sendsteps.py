"""The send worker's two grouped status steps alone, in-process: CPU per message.

For a group of ``group`` messages (the worker's in-flight window) on a fresh database: the
attempt start (``SendStore.start``: ATTEMPT_STARTED for the group, one transaction) and the
outcome (``SendStore.finish``: each attempt recorded, its synchronous Acknowledgment kept, its
job done and its message Delivered, one transaction), ``rounds`` times. CPU time of this process
per message, so no server, TLS or counterpart is involved and the figure moves little with the
machine's load (docs/performance.md "Outbound: the sender's CPU"). Run with another checkout's
``src`` on PYTHONPATH to measure that code with the same steps:

    PYTHONPATH=src:. python -m bench.sendsteps --db postgres --group 64 --rounds 20
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.common import Report
from bench.databases import private_database
from bench.groups import sent_message, their_ack
from bench.setup import work_folder
from ggk_ebms.clock import SystemClock
from ggk_ebms.lifecycle import Event
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue, NewAttempt, Outcome
from ggk_ebms.store.messages import MessageStore, NewMessage
from ggk_ebms.store.sending import Finished, SendStore

COLUMNS = ("db", "group", "messages", "start_cpu_ms_per_msg", "finish_cpu_ms_per_msg", "delivered")


def _sync_ack(sent_id: str, now: datetime) -> NewMessage:
    """A synchronous Acknowledgment the size of a real one (about 1.8 KB)."""
    return dataclasses.replace(their_ack(sent_id, now), envelope=b"<ack/>" * 300)


def run_sendsteps(*, db: str, group: int, rounds: int) -> Report:
    report = Report("sendsteps", {"db": db, "group": group, "rounds": rounds})
    start_cpu = finish_cpu = 0.0
    with work_folder() as work, private_database(db, work, "gemeente") as url:
        database = Database(url)
        try:
            database.upgrade()
            clock = SystemClock()
            store, jobs, sending = (
                MessageStore(database, clock),
                JobQueue(database, clock),
                SendStore(database, clock),
            )
            for _ in range(rounds):
                now = datetime.now(UTC)
                ids = [f"{uuid.uuid4()}@gemeente.bench" for _ in range(group)]
                pks = [store.submit(sent_message(i, now), [], due_at=now) for i in ids]
                claimed = jobs.claim(
                    "send", now=now, worker_id="bench", limit=group, lease=timedelta(minutes=5)
                )
                by_message = {job.message_pk: job.pk for job in claimed}
                cpu = time.process_time()
                sending.start([(pk, "attempt 1 started") for pk in pks])
                start_cpu += time.process_time() - cpu
                items = [
                    Finished(
                        Outcome(
                            by_message[pk],
                            pk,
                            "complete",
                            event=Event.ACCEPTED,
                            reason="Acknowledgment received",
                        ),
                        NewAttempt(pk, by_message[pk], now, now, "ok", 200),
                        _sync_ack(i, now),
                    )
                    for pk, i in zip(pks, ids, strict=True)
                ]
                cpu = time.process_time()
                sending.finish(items)
                finish_cpu += time.process_time() - cpu
            delivered = store.count(direction="out", status="Delivered")
        finally:
            database.dispose()
    messages = group * rounds
    report.add(
        db=db,
        group=group,
        messages=messages,
        start_cpu_ms_per_msg=round(start_cpu * 1000 / messages, 3),
        finish_cpu_ms_per_msg=round(finish_cpu * 1000 / messages, 3),
        delivered=delivered,
    )
    if delivered != messages:
        report.note(f"MISMATCH: {delivered} of {messages} Delivered")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--group", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=20)
    ns = parser.parse_args()
    report = run_sendsteps(db=ns.db, group=ns.group, rounds=ns.rounds)
    print(report.table(COLUMNS))
    for note in report.notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
