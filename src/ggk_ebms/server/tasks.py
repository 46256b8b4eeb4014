"""The background tasks a ``serve`` process runs beside the endpoint, in one list.

A single-process ``serve`` runs all of them. A multi-process one runs the send and delivery
workers in every server process, or with setting ``worker_processes`` in processes of their own
(server/queue_process.py); their jobs are claimed with SKIP LOCKED, store/jobs.py, so any
number of processes may run them. It runs the scheduled work (retention, the koppeltabel catch-up,
aanlever recovery, the weekly Ketendata export, CBS reminders) in a process of its own at a lower
CPU priority (server/scheduled.py). The scheduled work runs once per node (docs/operations.md,
"Several nodes").
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from ggk_ebms.config import Settings
from ggk_ebms.runtime import Runtime

Task = Callable[[Runtime], Coroutine[Any, Any, None]]


def background_tasks(settings: Settings, *, scheduled: bool) -> list[Task]:
    """The workers of one ``serve`` process; ``scheduled``: also the once-per-node work."""
    return queue_tasks(settings) + (scheduled_tasks(settings) if scheduled else [])


def queue_tasks(settings: Settings) -> list[Task]:
    """Sending (docs/sending.md) and delivery (docs/delivery.md), unless worker_enabled is off
    because separate ``ggk-ebms worker`` processes drain the queues."""
    from ggk_ebms.delivery.worker import delivery_task
    from ggk_ebms.pipeline.worker import worker_task

    return [worker_task(settings), delivery_task(settings)] if settings.worker_enabled else []


def scheduled_tasks(settings: Settings) -> list[Task]:
    """The once-per-node work."""
    from ggk_ebms.pipeline.aanlever_recovery import aanlever_recovery_task
    from ggk_ebms.pipeline.mailbox_retention import mailbox_retention_task
    from ggk_ebms.pipeline.retention import retention_task
    from ggk_ebms.services.cbs import reminder_task
    from ggk_ebms.services.ketendata import ketendata_task
    from ggk_ebms.services.koppeltabel import koppeltabel_task

    tasks: list[Task] = [retention_task(settings), mailbox_retention_task(settings)]
    # Aanleveringen a crash or stop left Bezig become Onderbroken (docs/operations.md).
    tasks.append(aanlever_recovery_task(settings))
    tasks.append(koppeltabel_task())  # keeps the koppeltabel filled (docs/koppeltabel.md)
    if settings.ketendata_schedule:
        tasks.append(ketendata_task(settings))  # the weekly Ketendata export (docs/ketendata.md)
    if settings.smtp_host:
        tasks.append(reminder_task(settings))  # CBS reminders by e-mail (docs/cbs.md)
    return tasks
