"""The leader/follower coordination of store/group_commit.py with fake writers (no database):
group forming, splitting after a conflict, one failure for all, and the queue behind a group
the database failed. Deterministic: threads meet at Events and Barriers, never at a time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence

import pytest

from ggk_ebms.errors import StoreError, StoreUnavailableError
from ggk_ebms.store.group_commit import AsyncGroupCommitter, GroupCommitter, GroupWrites, SplitGroup

DEADLINE_S = 30.0


class _Writer:
    """Records every call; the first group write waits until released."""

    def __init__(self, group_outcome: Callable[[Sequence[int]], list[str]]) -> None:
        self.groups: list[list[int]] = []
        self.singles: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self._outcome = group_outcome

    def write_group(self, items: Sequence[int]) -> list[str]:
        self.groups.append(list(items))
        if len(self.groups) == 1:
            self.entered.set()
            assert self.release.wait(DEADLINE_S)
        return self._outcome(items)

    def write_one(self, item: int) -> str:
        self.singles.append(item)
        if item == 13:
            raise StoreError("thirteen is taken")
        return f"one-{item}"


def _run(committer: GroupCommitter[int, str], writer: _Writer, queued: list[int]) -> dict[int, object]:
    """Hold item 0 inside its write, queue ``queued`` behind it, release, collect outcomes."""
    outcomes: dict[int, object] = {}

    def submit(item: int) -> None:
        try:
            outcomes[item] = committer.submit(item)
        except Exception as error:
            outcomes[item] = error

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    assert writer.entered.wait(DEADLINE_S)
    others = [threading.Thread(target=submit, args=(item,)) for item in queued]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + DEADLINE_S
    while committer.waiting < len(queued):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    writer.release.set()
    for thread in [first, *others]:
        thread.join(DEADLINE_S)
        assert not thread.is_alive()
    return outcomes


Run = Callable[..., dict[int, object]]


@pytest.fixture(params=["threads", "event-loop"])
def run(request: pytest.FixtureRequest) -> Run:
    """``_run`` with the committer of the parametrised kind built from the same writes: the
    thread committer (GroupCommitter) and the event loop's (AsyncGroupCommitter) keep one contract."""

    def with_kind(writer: _Writer, queued: list[int], **options: object) -> dict[int, object]:
        writes = GroupWrites(writer.write_group, writer.write_one, **options)  # type: ignore[arg-type]
        if request.param == "threads":
            return _run(GroupCommitter(writer.write_group, writer.write_one, **options), writer, queued)  # type: ignore[arg-type]
        return _run_async(AsyncGroupCommitter(writes), writer, queued)

    return with_kind


def test_the_queue_behind_a_group_is_written_as_groups_of_at_most_max_group(run: Run) -> None:
    writer = _Writer(lambda items: [f"g-{i}" for i in items])
    outcomes = run(writer, list(range(1, 7)), max_group=4)
    assert outcomes == {i: f"g-{i}" for i in range(7)}
    assert [len(group) for group in writer.groups] == [1, 4, 2]
    assert sorted(i for group in writer.groups for i in group) == list(range(7))
    assert writer.singles == []


def test_a_split_group_is_written_one_by_one_with_each_its_own_outcome(run: Run) -> None:
    def outcome(items: Sequence[int]) -> list[str]:
        if len(items) > 1:
            raise SplitGroup
        return [f"g-{items[0]}"]

    writer = _Writer(outcome)
    outcomes = run(writer, [11, 12, 13, 14])
    assert outcomes[0] == "g-0"
    assert isinstance(outcomes.pop(13), StoreError)
    assert {i: outcomes[i] for i in (11, 12, 14)} == {11: "one-11", 12: "one-12", 14: "one-14"}
    assert sorted(writer.singles) == [11, 12, 13, 14]


@pytest.mark.parametrize("unavailable", [True, False])
def test_a_failed_group_fails_every_member_and_an_outage_also_the_queue(run: Run, unavailable: bool) -> None:
    error = StoreUnavailableError("gone") if unavailable else StoreError("broken")

    def outcome(items: Sequence[int]) -> list[str]:
        if 0 in items:
            raise error
        return [f"g-{i}" for i in items]

    writer = _Writer(outcome)
    outcomes = run(writer, [1, 2, 3], fails_waiting=lambda e: isinstance(e, StoreUnavailableError))
    first = outcomes[0]
    assert isinstance(first, type(error))
    assert str(first) == str(error)
    if unavailable:
        # The queue got the outage at once, each its own copy, and nothing more was written.
        assert writer.groups == [[0]]
        assert all(isinstance(outcomes[i], StoreUnavailableError) for i in (1, 2, 3))
        assert len({id(outcomes[i]) for i in (0, 1, 2, 3)}) == 4
    else:
        # Any other failure belongs to its group only; the queue is written as the next group.
        assert writer.groups == [[0], [1, 2, 3]]
        assert {i: outcomes[i] for i in (1, 2, 3)} == {1: "g-1", 2: "g-2", 3: "g-3"}


def test_max_group_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_group"):
        GroupCommitter(lambda items: [], lambda item: item, max_group=0)
    with pytest.raises(ValueError, match="max_group"):
        GroupWrites(lambda items: [], lambda item: item, max_group=0)


# --- the same coordination for callers on an event loop (AsyncGroupCommitter) ------------------


def _run_async(
    committer: AsyncGroupCommitter[int, str], writer: _Writer, queued: list[int]
) -> dict[int, object]:
    """``_run`` on an event loop: item 0 held in the writer thread, ``queued`` awaited behind it."""

    async def scenario() -> dict[int, object]:
        first = asyncio.create_task(committer.submit(0))
        assert await asyncio.to_thread(writer.entered.wait, DEADLINE_S)
        others = [asyncio.create_task(committer.submit(item)) for item in queued]
        while committer.waiting < len(queued):  # each task queues on its first step
            await asyncio.sleep(0)
        writer.release.set()
        results = await asyncio.gather(first, *others, return_exceptions=True)
        committer.close()
        return dict(zip([0, *queued], results, strict=True))

    return asyncio.run(scenario())


def test_async_a_caller_that_stops_waiting_does_not_withdraw_its_item() -> None:
    """A request answered 503 at request_timeout is still written (the sender's retry is then a
    duplicate, ebMS 2.0 §6.5.3); nothing is half done."""
    writer = _Writer(lambda items: [f"g-{i}" for i in items])
    committer = AsyncGroupCommitter(GroupWrites(writer.write_group, writer.write_one))

    async def scenario() -> str:
        first = asyncio.create_task(committer.submit(0))
        assert await asyncio.to_thread(writer.entered.wait, DEADLINE_S)
        impatient = asyncio.create_task(committer.submit(1))
        while committer.waiting < 1:
            await asyncio.sleep(0)
        impatient.cancel()
        with pytest.raises(asyncio.CancelledError):
            await impatient
        writer.release.set()
        result = await first
        deadline = time.monotonic() + DEADLINE_S
        while len(writer.groups) < 2:  # the writer goes on without the caller
            assert time.monotonic() < deadline
            await asyncio.to_thread(time.sleep, 0.01)
        committer.close()
        return result

    assert asyncio.run(scenario()) == "g-0"
    assert writer.groups == [[0], [1]]


def test_async_an_idle_committer_writes_a_group_of_one_at_once() -> None:
    writer = _Writer(lambda items: [f"g-{i}" for i in items])
    writer.release.set()
    committer = AsyncGroupCommitter(GroupWrites(writer.write_group, writer.write_one))

    async def scenario() -> list[str]:
        results = [await committer.submit(item) for item in (1, 2)]
        committer.close()
        return results

    assert asyncio.run(scenario()) == ["g-1", "g-2"]
    assert writer.groups == [[1], [2]]
