"""The scheduled work of a multi-process ``serve`` in a process of its own, at a lower priority.

The scheduled work (server/tasks.py ``scheduled_tasks``: retention, the koppeltabel catch-up,
aanlever recovery, the Ketendata schedule, CBS reminders) used to run in the first server
process. Its threads then took GIL time from the event loop that decides requests: every 5 s the
koppeltabel catch-up read up to 1,000 messages, and the requests in that second were the slowest
1%: p99 23-218 ms at 380 msg/s, 11-13 ms with no catch-up (docs/performance.md, "The collector
and the tail"). In its own process the slowest request stayed under 62 ms in those runs; the
p99 at half load did not measurably change.
A GIL is per process, and the operating system's scheduler can prefer one process over another:
in a process of its own with a higher nice value (``NICE_INCREMENT``), the scheduled work gets
the cores when the server processes leave them idle, and far less of them while requests wait.
The services that read the koppeltabel still catch up first themselves (services/koppeltabel.py),
so an answer never misses a stored message. Since then the catch-up also waits for a poll that
finds no new message (koppeltabel_pace.py): the nice value lowers its share of the cores, not
the cache and GIL time it takes from the request path in that second.

Like the server processes it beats for its tasks (api/health.py ``heartbeat_task``), so
/health/ready of any process sees them, and it stops on SIGTERM from the parent ``serve``
(server/task_process.py).
"""

from __future__ import annotations

import logging
import os
from typing import Final

from ggk_ebms.config import Settings
from ggk_ebms.server.task_process import run_task_process
from ggk_ebms.server.tasks import scheduled_tasks

log = logging.getLogger(__name__)

# Added to the process's nice value: CFS then weighs it at about a tenth of a server process
# (nice 0: weight 1024, nice 10: 110; Linux kernel/sched/core.c sched_prio_to_weight).
NICE_INCREMENT: Final = 10


def lower_priority(increment: int = NICE_INCREMENT) -> int:
    """Raise this process's nice value by ``increment``; the new value (unchanged if refused)."""
    try:
        return os.nice(increment)
    except OSError as exc:  # a sandbox that refuses it: run at the normal priority
        log.warning("scheduled work: priority not lowered: %s", exc.strerror or exc)
        return os.nice(0)


def run_scheduled_process(settings: Settings) -> None:
    """Entry point of the scheduled-work process of a multi-process ``serve`` (spawned), at a
    lower priority."""
    run_task_process(settings, scheduled_tasks, what="scheduled work", prepare=lambda _: lower_priority())
