"""Group calls: many concurrent callers, one blocking call for all of them (group commit).

The send worker has many messages in flight; each wants the same database steps at about the
same time (read its message, start its attempt, write its outcome). ``Batcher.submit`` queues
the caller's item and waits; one flusher at a time hands every queued item to ``call_many`` in a
thread, then the next group that queued up meanwhile. No timer: a lone item goes at once, and
under load the groups grow by themselves while the previous group is in the database.

``call_many`` returns one result per item, in order; an ``Exception`` in that list fails only
its own caller. An exception raised by ``call_many`` fails the whole group (a database that
went away: every caller then hands its job back, pipeline/worker.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """``await batcher.submit(item)`` -> that item's result from ``call_many`` (run in a thread)."""

    def __init__(self, call_many: Callable[[list[Item]], Sequence[Result | Exception]], *, most: int) -> None:
        if most < 1:
            raise ValueError("most must be at least 1")
        self._call_many = call_many
        self._most = most
        self._queued: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        if self._flusher is None:
            # Started, not run: every caller that reaches this point in the same turn of the
            # event loop is queued before the flusher takes its first group.
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._queued:
                group = self._queued[: self._most]
                del self._queued[: self._most]
                await self._run(group)
        finally:
            self._flusher = None
            for _, future in self._queued:  # only when cancelled: no one is left to run them
                future.cancel()
            self._queued.clear()

    async def _run(self, group: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await asyncio.to_thread(self._call_many, [item for item, _ in group])
            if len(results) != len(group):
                raise RuntimeError(f"call_many gave {len(results)} results for {len(group)} items")
        except BaseException as exc:
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, future), result in zip(group, results, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
