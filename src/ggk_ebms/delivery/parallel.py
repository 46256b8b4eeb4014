"""One function over a batch on a few threads that share it; the results in the batch's order.

The delivery worker forwards a batch to directory and HTTP targets up to ``delivery_parallel``
at once (docs/delivery.md "Batches"): those forwarders wait in fsync or on the network, outside
the GIL. A ThreadPoolExecutor per batch made a Future for every message (a Condition with its
lock and waiter list) and started its threads anew for every batch: 7% of the worker's samples
in a py-spy profile of ``bench delivery`` (docs/performance.md, round 10). Here each thread
takes the next item off one shared queue until none is left, and the calling thread is one of
them, so a batch costs ``workers - 1`` thread starts and nothing per item.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_shared(work: Callable[[T], R], items: Sequence[T], workers: int, *, name: str) -> list[R]:
    """``[work(item) for item in items]`` on up to ``workers`` threads (the caller's included).

    As ``Executor.map``: an exception from ``work`` is raised here, the one of the first item
    in order that raised. Once an item has raised, the threads take no further items (one
    being taken at that moment still runs), and every thread has ended before this returns
    or raises.
    """
    if workers <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(items)):
        pending.put(index)
    results: dict[int, R] = {}
    failures: list[tuple[int, BaseException]] = []

    def take() -> None:
        while not failures:
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = work(items[index])
            except BaseException as exc:  # raised again in the caller's thread, as Executor.map does
                failures.append((index, exc))

    threads = [
        threading.Thread(target=take, name=f"{name}-{n}", daemon=True)
        for n in range(1, min(workers, len(items)))
    ]
    for thread in threads:
        thread.start()
    try:
        take()
    finally:
        for thread in threads:
            thread.join()
    if failures:
        raise min(failures, key=lambda failure: failure[0])[1]
    return [results[index] for index in range(len(items))]
