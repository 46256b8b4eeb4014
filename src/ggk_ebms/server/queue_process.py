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

from ggk_ebms.config import Settings
from ggk_ebms.security.devguard import refuse_public_dev_material
from ggk_ebms.server.task_process import run_task_process
from ggk_ebms.server.tasks import queue_tasks


def run_queue_process(settings: Settings) -> None:
    """Entry point of a worker process of a multi-process ``serve`` (spawned). The dev-key guard
    runs first: the send worker uses our keys as a server process does."""
    run_task_process(
        settings, queue_tasks, what="send and delivery workers", prepare=refuse_public_dev_material
    )
