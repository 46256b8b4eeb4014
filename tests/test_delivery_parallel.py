"""``delivery.parallel.map_shared``: the delivery worker's batch on a few threads that share it
(the caller's among them), results in order, the first failure in order raised as
``Executor.map`` raises it, and every thread ended before it returns. No timing: concurrency is
shown by a barrier that only opens when ``workers`` items run at once."""

from __future__ import annotations

import threading

import pytest

from ggk_ebms.delivery.parallel import map_shared

DEADLINE_S = 30.0


def test_results_come_in_the_batchs_order_from_at_most_workers_threads() -> None:
    seen: set[int] = set()

    def work(n: int) -> int:
        seen.add(threading.get_ident())
        return n * n

    assert map_shared(work, list(range(200)), 3, name="t") == [n * n for n in range(200)]
    assert 1 <= len(seen) <= 3
    assert not [t for t in threading.enumerate() if t.name.startswith("t-")]


def test_workers_items_run_at_once_and_the_caller_is_one_of_them() -> None:
    gate = threading.Barrier(4, timeout=DEADLINE_S)  # breaks (and fails the test) unless 4 run at once
    threads: list[str] = []

    def work(n: int) -> int:
        threads.append(threading.current_thread().name)
        if n < 4:
            gate.wait()
        return n

    assert map_shared(work, list(range(12)), 4, name="deliver") == list(range(12))
    assert threading.current_thread().name in threads
    assert set(threads) <= {
        threading.current_thread().name,
        "deliver-1",
        "deliver-2",
        "deliver-3",
    }


def test_one_worker_or_one_item_runs_in_the_calling_thread() -> None:
    caller = threading.get_ident()
    assert map_shared(lambda n: threading.get_ident(), [1, 2, 3], 1, name="t") == [caller] * 3
    assert map_shared(lambda n: threading.get_ident(), [1], 8, name="t") == [caller]
    assert map_shared(lambda n: n, [], 8, name="t") == []


def test_the_first_failure_in_order_is_raised_and_no_item_starts_after_one() -> None:
    started: list[int] = []
    second_failed = threading.Event()

    def work(n: int) -> int:
        started.append(n)
        if n == 0:
            # Item 0 fails only after item 1 has: the raise must still be item 0's.
            assert second_failed.wait(DEADLINE_S)
            raise ValueError("item 0")
        second_failed.set()
        raise KeyError(f"item {n}")

    with pytest.raises(ValueError, match="item 0"):
        map_shared(work, list(range(100)), 2, name="t")
    # Two threads: one waits in item 0, the other fails at item 1 and takes no more.
    assert sorted(started) == [0, 1]
    assert not [t for t in threading.enumerate() if t.name.startswith("t-")]
