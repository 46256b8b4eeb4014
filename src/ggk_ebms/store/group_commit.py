"""Group commit: concurrent writers in one process share one transaction and one commit.

The inbound pipeline runs in a thread pool (server/app.py), and on the hot path each received
message cost one synchronous commit of its own (docs/performance.md, "Where the time goes now").
Here the first thread to arrive becomes the *leader*: it takes every item waiting at that moment
(up to ``max_group``), hands them to ``write_group`` (one transaction, one commit), and then
gives every *follower* its own result. Threads that arrive while a group is being written wait
and form the next group; no timer is involved, so an idle endpoint writes a group of one at once.

The guarantee of the caller is kept per item: ``submit`` returns only after ``write_group``
returned, i.e. after the group's commit (architecture "Nothing is acknowledged before its
transaction has committed"). What ``write_group`` raises is raised to every member of the group
(each gets its own copy), so a failed commit answers every waiting request alike and none of
them is acknowledged. When ``write_group`` says the group must be split (``SplitGroup``, e.g. a
UNIQUE conflict of one member, which rolled the whole group back), each member is written on
its own by ``write_one`` and gets its own result or error.

Pure coordination: no I/O of its own; the callables do the writing.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from ggk_ebms.errors import StoreError

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_GROUP = 64


class SplitGroup(Exception):
    """Raised by ``write_group`` after a rollback: write the members one by one instead."""


@dataclass(eq=False)
class _Slot(Generic[T, R]):
    item: T
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


def _own_copy(error: BaseException) -> BaseException:
    """Each waiting thread raises its own exception object: one object raised in several threads
    at once would collect their tracebacks into one another."""
    try:
        clone = copy.copy(error)
    except Exception:
        return error
    clone.__cause__ = error.__cause__
    clone.__context__ = error.__context__
    return clone.with_traceback(None)


@dataclass(frozen=True)
class GroupWrites(Generic[T, R]):
    """How a group is written: shared by the thread and the event-loop committer of one store."""

    write_group: Callable[[Sequence[T]], Sequence[R]]
    write_one: Callable[[T], R]
    max_group: int = DEFAULT_MAX_GROUP
    # True for a failure that also fails the items queued meanwhile (the database is away).
    fails_waiting: Callable[[BaseException], bool] = lambda _error: False

    def __post_init__(self) -> None:
        if self.max_group < 1:
            raise ValueError("max_group must be at least 1")


def _write_slots(group: Sequence[_Slot[T, R]], writes: GroupWrites[T, R]) -> BaseException | None:
    """Write the group and fill in every member; returns what failed the whole group."""
    failure: BaseException | None = None
    try:
        results = writes.write_group([member.item for member in group])
    except SplitGroup:
        for member in group:
            try:
                member.result = writes.write_one(member.item)
            except Exception as error:
                member.error = error
            member.done = True
        return None
    except Exception as error:
        failure = error
    else:
        if len(results) == len(group):
            for member, result in zip(group, results, strict=True):
                member.result = result
                member.done = True
            return None
        failure = StoreError(f"a group of {len(group)} writes gave {len(results)} results")
    for member in group:
        member.error = failure
        member.done = True
    return failure


class GroupCommitter(Generic[T, R]):
    """Leader/follower group commit over ``write_group`` (see the module docstring)."""

    def __init__(
        self,
        write_group: Callable[[Sequence[T]], Sequence[R]],
        write_one: Callable[[T], R],
        *,
        max_group: int = DEFAULT_MAX_GROUP,
        fails_waiting: Callable[[BaseException], bool] = lambda _error: False,
    ) -> None:
        self.writes = GroupWrites(write_group, write_one, max_group, fails_waiting)
        self._cond = threading.Condition()
        self._pending: list[_Slot[T, R]] = []
        self._leading = False

    @property
    def waiting(self) -> int:
        """Items queued for the next group (observability and tests)."""
        with self._cond:
            return len(self._pending)

    def submit(self, item: T) -> R:
        """Write ``item`` with whatever else is waiting; returns after the commit that holds it."""
        slot: _Slot[T, R] = _Slot(item)
        with self._cond:
            self._pending.append(slot)
        while True:
            with self._cond:
                while not slot.done and self._leading:
                    self._cond.wait()
                if slot.done:
                    return self._outcome(slot)
                # No group is being written and ours is not done: lead the next one. FIFO, so
                # the group holds the oldest waiting items (ours among them unless more than
                # max_group were ahead of it; then we lead again afterwards).
                self._leading = True
                group = self._pending[: self.writes.max_group]
                del self._pending[: self.writes.max_group]
            failure: BaseException | None = None
            try:
                failure = _write_slots(group, self.writes)
            finally:
                with self._cond:
                    for member in group:
                        if not member.done:  # only when _write was interrupted (BaseException)
                            member.error = StoreError("the group commit was interrupted")
                            member.done = True
                    if failure is not None and self.writes.fails_waiting(failure):
                        # The database just failed the whole group (e.g. unreachable): the
                        # requests that queued meanwhile get the same answer now instead of a
                        # second wait of the same length (a 503 within seconds, docs/security.md).
                        for member in self._pending:
                            member.error = failure
                            member.done = True
                        self._pending.clear()
                    self._leading = False
                    self._cond.notify_all()

    @staticmethod
    def _outcome(slot: _Slot[T, R]) -> R:
        return _outcome(slot)


def _outcome(slot: _Slot[T, R]) -> R:
    if slot.error is not None:
        raise _own_copy(slot.error)
    return slot.result  # type: ignore[return-value]


class AsyncGroupCommitter(Generic[T, R]):
    """The same group commit for callers on an event loop, without a thread per caller.

    Callers ``await submit(item)`` on the loop; one writer task per loop takes every item
    waiting (up to ``max_group``) and runs ``write_group`` in the committer's own writer thread,
    so the loop never blocks on the database and there is one thread hand-off per group instead
    of one per request (docs/performance.md "The request path on the event loop"). A caller is
    answered only after the commit that holds its item, with its own result or error, exactly as
    ``GroupCommitter.submit`` answers; ``fails_waiting`` likewise fails the items that queued
    during a write the database failed as a whole.

    A caller that stops waiting (cancelled, e.g. at request_timeout) does not withdraw its item:
    it is written like the others (the sender retries and duplicate elimination recognises it).
    """

    def __init__(self, writes: GroupWrites[T, R], *, thread_name: str = "ebms-commit") -> None:
        self.writes = writes
        self._thread_name = thread_name
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[tuple[_Slot[T, R], asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()  # only for creating the writer thread once

    @property
    def waiting(self) -> int:
        """Items queued for the next group (observability and tests)."""
        return len(self._pending)

    async def submit(self, item: T) -> R:
        """Write ``item`` with whatever else is waiting; returns after the commit that holds it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((_Slot(item), future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name="group-commit")
        # shield: the write goes on when the caller stops waiting (see the class docstring).
        return await asyncio.shield(future)

    def close(self) -> None:
        """Stop the writer thread once idle (no item may be submitted afterwards)."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=False)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
            return self._writer

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            # One turn of the loop first: requests whose bytes arrived meanwhile are decided and
            # join this group instead of the next (on a busy loop groups would otherwise stay at
            # one, each paying a commit of its own). No timer: an idle loop comes straight back.
            await asyncio.sleep(0)
            batch = self._pending[: self.writes.max_group]
            del self._pending[: self.writes.max_group]
            slots = [slot for slot, _future in batch]
            try:
                failure = await loop.run_in_executor(self._executor(), _write_slots, slots, self.writes)
            except BaseException as interrupted:  # the loop is shutting down under us
                for slot in slots:
                    if not slot.done:
                        slot.error = StoreError("the group commit was interrupted")
                        slot.done = True
                self._settle(batch)
                if not isinstance(interrupted, Exception):
                    raise
                continue
            self._settle(batch)
            if failure is not None and self.writes.fails_waiting(failure):
                waiting, self._pending = self._pending, []
                for slot, _future in waiting:
                    slot.error = failure
                    slot.done = True
                self._settle(waiting)

    @staticmethod
    def _settle(batch: Sequence[tuple[_Slot[T, R], asyncio.Future[R]]]) -> None:
        for slot, future in batch:
            if future.done():
                continue
            if slot.error is not None:
                future.set_exception(_own_copy(slot.error))
            else:
                future.set_result(slot.result)  # type: ignore[arg-type]
