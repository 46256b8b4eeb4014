"""A byte range that stays in a temporary file instead of on the heap.

The server spools a large body to a temporary file while it arrives and maps that file read-only
(server/app.py). A part of it (mime/related.py) is then a range of the mapping, not a copy: a
25 MB StUF envelope is held by the page cache, not a second time by this process (docs/performance.md
"Memory"). A large stored part is read back the same way (``spool``, store/large_parts.py) for
the delivery worker and the koppeltabel, which parse it slice by slice (xml.py).

Pages the process touched still count as its resident memory, so whoever reads the range whole
(the MIME split, a digest, the store writing it, a parser) reads it in slices, and the slices
already read are dropped from this process's page tables with ``madvise(MADV_DONTNEED)``: for a
read-only file mapping that only forgets the mapping; the next read faults the page in again
from the page cache, with the same bytes (the file is private to its reader and never written).
"""

from __future__ import annotations

import hashlib
import mmap
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
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


def size_of(content: bytes | SpooledRange) -> int:
    return len(content) if isinstance(content, bytes) else content.size


def whole(content: bytes | SpooledRange) -> bytes:
    """The content as bytes: a spooled range is copied into memory (for readers that need it whole)."""
    return content if isinstance(content, bytes) else content.view().tobytes()


def spool(pieces: Iterable[bytes], directory: Path | None = None) -> SpooledRange:
    """Write ``pieces`` to an anonymous temporary file and map it: the whole as a range.

    The file is unlinked from the start (``TemporaryFile``) and closed here; the mapping keeps
    it until the last reference to the range is gone. An empty content maps nothing (mmap cannot
    map zero bytes): it comes back as a range over an anonymous one-byte mapping, zero long.
    """
    with tempfile.TemporaryFile(dir=directory) as handle:
        for piece in pieces:
            handle.write(piece)
        size = handle.tell()
        if size == 0:
            return SpooledRange(mmap.mmap(-1, 1), 0, 0)
        handle.flush()
        return SpooledRange(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
