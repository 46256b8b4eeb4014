"""Group commit at the store: concurrent ``MessageStore.receive`` calls, with and without groups.

Threads released together by a barrier each store ``count`` received messages (a 2 KB part,
a synchronous Acknowledgment, a deliver job) on a fresh database: first with one commit per
message (``max_group=1``, the baseline of the same run), then with group commit (the default).
The commits are counted with SQLAlchemy events (a COMMIT, or a statement run in autocommit,
which commits itself), so messages per commit is a count, not a timing; msg/s and CPU per
message are this process's (docs/performance.md, "Round 3").

With ``signals`` each receive is instead an asynchronous Acknowledgment of a message we sent
(queued before the clock starts): the sent message is looked up by RefToMessageId as the inbound
decision does (``find("out", ...)``) and the Ack is stored with its effect (Delivered, the send
job done). Every sent message must end Delivered. The lookups are read transactions and their
COMMITs are counted too: with one commit per message that is two per Acknowledgment.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import event

from bench.common import Report
from bench.databases import private_database
from bench.setup import work_folder
from ggk_ebms.lifecycle import Event
from ggk_ebms.ns import EBMS_SERVICE
from ggk_ebms.store.db import Database, in_autocommit
from ggk_ebms.store.group_commit import DEFAULT_MAX_GROUP
from ggk_ebms.store.messages import MessageStore, NewMessage, NewPart, SignalEffect, StoredMessage

COLUMNS: Final = (
    "db",
    "state",
    "threads",
    "messages",
    "commits",
    "msg_per_commit",
    "msg_per_s",
    "cpu_ms_per_msg",
)
_PART: Final = [NewPart("<payload@bench>", "application/xml", b"<p>" + b"x" * 2048 + b"</p>")]


def _received(message_id: str, now: datetime) -> NewMessage:
    return NewMessage(
        direction="in",
        message_id=message_id,
        cpa_id="cpa-bench",
        conversation_id="conversation-bench",
        from_party_id="00000099000001000000",
        from_party_type="urn:osb:oin",
        to_party_id="00000099000003630000",
        to_party_type="urn:osb:oin",
        service="urn:osb:services:wmo",
        action="Verzenden",
        kind="business",
        timestamp=now,
        time_to_live=now + timedelta(hours=27),
        status="Received",
        content_digest="ab" * 32,
        envelope=b"<soap:Envelope/>",
        content_type='multipart/related; type="text/xml"; boundary=b',
    )


def _ack(message_id: str, now: datetime) -> NewMessage:
    return NewMessage(
        direction="out",
        message_id=f"ack-{message_id}",
        cpa_id="cpa-bench",
        conversation_id="conversation-bench",
        ref_to_message_id=message_id,
        from_party_id="00000099000003630000",
        from_party_type="urn:osb:oin",
        to_party_id="00000099000001000000",
        to_party_type="urn:osb:oin",
        service=EBMS_SERVICE,
        action="Acknowledgment",
        kind="Acknowledgment",
        timestamp=now,
        status="Created",
        envelope=b"<ack/>",
        content_type="text/xml",
        sync_reply=True,
    )


def sent_message(message_id: str, now: datetime) -> NewMessage:
    """A business message we sent (queued far ahead, so nothing sends it during the bench)."""
    return NewMessage(
        direction="out",
        message_id=message_id,
        cpa_id="cpa-bench",
        conversation_id="conversation-bench",
        from_party_id="00000099000003630000",
        from_party_type="urn:osb:oin",
        to_party_id="00000099000001000000",
        to_party_type="urn:osb:oin",
        service="urn:osb:services:wmo",
        action="Verzenden",
        kind="business",
        timestamp=now,
        time_to_live=now + timedelta(hours=27),
        status="Created",
        envelope=b"<soap:Envelope/>",
        content_type="text/xml",
    )


def their_ack(sent_id: str, now: datetime) -> NewMessage:
    """The counterpart's Acknowledgment of ``sent_id``, as we store it when it arrives."""
    return NewMessage(
        direction="in",
        message_id=f"ack-{sent_id}",
        cpa_id="cpa-bench",
        conversation_id="conversation-bench",
        ref_to_message_id=sent_id,
        from_party_id="00000099000001000000",
        to_party_id="00000099000003630000",
        service=EBMS_SERVICE,
        action="Acknowledgment",
        kind="Acknowledgment",
        timestamp=now,
        status="Processed",
        envelope=b"<ack/>",
        content_type="text/xml",
    )


def _queue_sent(store: MessageStore, threads: int, count: int) -> list[list[str]]:
    """Per thread, the MessageIds of ``count`` sent messages waiting for their Acknowledgment."""
    now = datetime.now(UTC)
    ids = [[f"{uuid.uuid4()}@gemeente.bench" for _ in range(count)] for _ in range(threads)]
    for per_thread in ids:
        for message_id in per_thread:
            store.submit(sent_message(message_id, now), [], due_at=now + timedelta(days=1))
    return ids


def _receive_ack(store: MessageStore, sent_id: str) -> None:
    """What the inbound pipeline does for an asynchronous Acknowledgment: look up, decide, store."""
    sent: StoredMessage | None = store.find("out", sent_id)
    if sent is None:
        raise RuntimeError(f"sent message {sent_id} not found")
    store.receive(
        their_ack(sent_id, datetime.now(UTC)),
        [],
        response=None,
        deliver=False,
        send_response_async=False,
        effect=SignalEffect(sent.pk, Event.ACCEPTED, "Acknowledgment received"),
    )


def _phase(database: Database, max_group: int, threads: int, count: int, signals: bool) -> dict[str, Any]:
    commits = [0]
    lock = threading.Lock()

    def committed(*_args: Any) -> None:
        with lock:
            commits[0] += 1

    def executed(conn: Any, *_args: Any) -> None:
        if in_autocommit(conn):
            committed()

    event.listen(database.engine, "commit", committed)
    event.listen(database.engine, "before_cursor_execute", executed)
    store = MessageStore(database, max_group=max_group)
    sent_ids = _queue_sent(store, threads, count) if signals else []
    commits[0] = 0
    barrier = threading.Barrier(threads + 1)
    failures: list[BaseException] = []

    def work(n: int) -> None:
        barrier.wait()
        try:
            if signals:
                for sent_id in sent_ids[n]:
                    _receive_ack(store, sent_id)
                return
            for _ in range(count):
                message_id = f"{uuid.uuid4()}@bench"
                now = datetime.now(UTC)
                store.receive(
                    _received(message_id, now),
                    _PART,
                    response=_ack(message_id, now),
                    deliver=True,
                    send_response_async=False,
                )
        except BaseException as error:
            failures.append(error)

    workers = [threading.Thread(target=work, args=(n,), name=f"bench-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    wall, cpu = time.perf_counter(), time.process_time()
    barrier.wait()
    for worker in workers:
        worker.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    event.remove(database.engine, "commit", committed)
    event.remove(database.engine, "before_cursor_execute", executed)
    if failures:
        raise RuntimeError(f"a receive failed: {failures[0]!r}")
    messages = threads * count
    return {
        "threads": threads,
        "messages": messages,
        "commits": commits[0],
        "msg_per_commit": round(messages / max(1, commits[0]), 2),
        "msg_per_s": round(messages / wall, 1),
        "cpu_ms_per_msg": round(cpu * 1000 / messages, 3),
    }


def run_groups(*, db: str, threads: int, count: int, signals: bool = False) -> Report:
    report = Report("groups", {"db": db, "threads": threads, "count": count, "signals": signals})
    with work_folder() as work, private_database(db, work, "gemeente") as url:
        database = Database(url)
        try:
            database.upgrade()
            for state, max_group in (("one commit per message", 1), ("group commit", DEFAULT_MAX_GROUP)):
                report.add(db=db, state=state, **_phase(database, max_group, threads, count, signals))
            stored = MessageStore(database).count()
            delivered = MessageStore(database).count(direction="out", status="Delivered")
        finally:
            database.dispose()
    expected = 2 * 2 * threads * count  # two phases, a message and its Acknowledgment each
    report.note(f"stored {stored} of {expected} rows expected (messages and Acknowledgments)")
    if stored != expected:
        report.note("MISMATCH: the store does not hold what the receives returned")
    if signals:
        report.note(f"{delivered} of {2 * threads * count} sent messages Delivered by their Acknowledgment")
        if delivered != 2 * threads * count:
            report.note("MISMATCH: an Acknowledgment's effect is missing")
    return report
