"""The send and delivery workers of a multi-process ``serve`` in processes of their own
(setting ``worker_processes``).

A GIL is per process. Inside a server process the delivery worker's threads (unwrap, the
database steps of a batch) take the GIL from the event loop that reads, decides and answers
requests, and each takes the other's turn: receiving and delivering 3,000 messages end to end on
a 2-core machine ran at 348-444 messages/s delivered with the workers in the one server process,
and at 525-552 with them in a process of their own beside it (docs/performance.md, round 11).
The jobs are claimed with SKIP LOCKED (store/jobs.py), so any number of these processes, and of
``ggk-ebms worker`` processes elsewhere, share the queues.

No wake-up reaches such a worker from another process: the receive path's (delivery/wakeup.py)
and a submit's (pipeline/outbound.py, from the management API or the console in a server
process) wake workers in their own process only. It finds a newly received or submitted message
at its next poll (``worker_poll_seconds``) or, while busy, with its next claim: a delivery or a
send waits at most that long, and is never lost (docs/delivery.md, docs/sending.md).
"""

from __future__ import annotations

import logging
import sys

from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.security.devguard import refuse_public_dev_material
from ggk_ebms.server import allocator
from ggk_ebms.server import loop as event_loop
from ggk_ebms.server.run import prepare_child_process
from ggk_ebms.server.task_process import run_tasks
from ggk_ebms.server.tasks import queue_tasks

log = logging.getLogger(__name__)


def run_queue_process(settings: Settings) -> None:
    """Entry point of a worker process of a multi-process ``serve`` (spawned; the parent has
    migrated the database and imported the CPAs already)."""
    prepare_child_process(settings)
    allocator.limit_arenas()  # before the delivery worker's threads start, as in a server process
    try:
        refuse_public_dev_material(settings)  # the send worker uses our keys as the server does
        event_loop.run(run_tasks(settings, queue_tasks(settings), what="send and delivery workers"))
    except GgkEbmsError as exc:
        log.error("%s", exc)
        sys.exit(1)
