"""A byte range of a request body that stays in its spool file instead of on the heap.

The server spools a large body to a temporary file while it arrives and maps that file read-only
(server/app.py). A part of it (mime/related.py) is then a range of the mapping, not a copy: a
25 MB StUF envelope is held by the page cache, not a second time by this process (docs/performance.md
"Memory"). Pages the process touched still count as its resident memory, so whoever reads the
range whole (the MIME split, a digest, the store writing it) reads it in slices, and the slices
already read are dropped from this process's page tables with ``madvise(MADV_DONTNEED)``: for a
read-only file mapping that only forgets the mapping; the next read faults the page in again
from the page cache, with the same bytes (the file is private to this request and never written).
"""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Iterator
from typing import Final

SLICE: Final = 1024 * 1024


class SpooledRange:
    """``mapping[start:end]``, read without copying it whole."""

    __slots__ = ("end", "mapping", "start")

    def __init__(self, mapping: mmap.mmap, start: int = 0, end: int | None = None) -> None:
        self.mapping = mapping
        self.start = start
        self.end = len(mapping) if end is None else end

    @property
    def size(self) -> int:
        return self.end - self.start

    def view(self) -> memoryview:
        """The whole range as a view (every page read through it becomes resident)."""
        return memoryview(self.mapping)[self.start : self.end]

    def head(self, length: int) -> bytes:
        return self.mapping[self.start : min(self.end, self.start + length)]

    def slices(self, size: int = SLICE) -> Iterator[memoryview]:
        """The range in views of ``size`` bytes; each slice's pages are dropped once it is used."""
        whole = memoryview(self.mapping)
        for offset in range(self.start, self.end, size):
            stop = min(self.end, offset + size)
            with whole[offset:stop] as piece:
                yield piece
            self._drop(offset, stop)
        self.release()

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.slices():
            digest.update(piece)
        return digest.hexdigest()

    def release(self) -> None:
        """Drop the range's pages from this process's resident memory (they stay readable)."""
        self._drop(self.start, self.end)

    def _drop(self, start: int, stop: int) -> None:
        # madvise wants a page-aligned start; the page holding ``start`` was read already.
        aligned = start - start % mmap.PAGESIZE
        if stop > aligned and not self.mapping.closed:
            self.mapping.madvise(mmap.MADV_DONTNEED, aligned, stop - aligned)
