"""Which background work each ``serve`` process runs (server/tasks.py), and how many processes
``serve`` starts (setting ``processes``; 0 = one per CPU core)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ggk_ebms.api.health import worker_kind
from ggk_ebms.config import Settings
from ggk_ebms.errors import ConfigError
from ggk_ebms.server.tasks import background_tasks, queue_tasks, scheduled_tasks
from tests.process import free_port


def _kinds(settings: Settings, *, scheduled: bool) -> list[str]:
    return [worker_kind(task) for task in background_tasks(settings, scheduled=scheduled)]


def test_the_first_process_runs_the_scheduled_work_and_the_others_only_the_queues(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, ketendata_schedule=True, smtp_host="mail.example")
    first = _kinds(settings, scheduled=True)
    other = _kinds(settings, scheduled=False)
    assert other == first[:2]
    # A multi-process serve runs the rest in a process of its own (server/scheduled.py).
    assert [worker_kind(task) for task in scheduled_tasks(settings)] == first[2:]
    assert [worker_kind(task) for task in queue_tasks(settings)] == other
    assert len(first) == 8  # send, delivery, retention, mailbox, recovery, koppeltabel, Ketendata, CBS
    assert len(set(first)) == len(first)
    quiet = Settings(data_dir=tmp_path, ketendata_schedule=False, smtp_host="", worker_enabled=False)
    assert len(_kinds(quiet, scheduled=True)) == 4
    assert _kinds(quiet, scheduled=False) == []


def test_processes_zero_means_one_per_core(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    port = free_port()  # nothing binds it here; a named port, as an operator sets one
    assert Settings(data_dir=tmp_path, port=port).effective_processes == cores
    # Several processes must share one named port; a port chosen by the system means one.
    assert Settings(data_dir=tmp_path, port=0).effective_processes == 1
    assert Settings(data_dir=tmp_path, port=port, processes=3).effective_processes == 3


def test_a_negative_processes_setting_is_refused(tmp_path: Path) -> None:
    from ggk_ebms.config import load

    with pytest.raises(ConfigError, match="processes"):
        load(None, {"GGK_EBMS_PROCESSES": "-1", "GGK_EBMS_DATA_DIR": str(tmp_path)})
