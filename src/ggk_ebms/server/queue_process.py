"""The send and delivery workers of a multi-process ``serve`` in processes of their own
(setting ``worker_processes``).

A GIL is per process. Inside a server process the delivery worker's threads (unwrap, the
database steps of a batch) take the GIL from the event loop that reads, decides and answers
requests, and each takes the other's turn: receiving and delivering 3,000 messages end to end on
a 2-core machine ran at 348-444 messages/s delivered with the workers in the one server process,
and at 525-552 with them in a process of their own beside it (docs/performance.md, round 11).
The jobs are claimed with SKIP LOCKED (store/jobs.py), so any number of these processes, and of
``ggk-ebms worker`` processes elsewhere, share the queues.

Without the in-process wake-up of the receive path (delivery/wakeup.py), such a worker finds a
newly received message at its next poll (``worker_poll_seconds``) or, while busy, with its next
batch claim: a delivery waits at most that long, and is never lost (docs/delivery.md).
"""

from __future__ import annotations

import logging
import sys

from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.server import loop as event_loop
from ggk_ebms.server.run import prepare_child_process
from ggk_ebms.server.task_process import run_tasks
from ggk_ebms.server.tasks import queue_tasks

log = logging.getLogger(__name__)


def run_queue_process(settings: Settings) -> None:
    """Entry point of a worker process of a multi-process ``serve`` (spawned; the parent has
    migrated the database and imported the CPAs already)."""
    prepare_child_process(settings)
    try:
        event_loop.run(run_tasks(settings, queue_tasks(settings), what="send and delivery workers"))
    except GgkEbmsError as exc:
        log.error("%s", exc)
        sys.exit(1)
