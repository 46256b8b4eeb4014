"""Directory target: write the payload (and optionally envelope and metadata) into a folder.

Each file is written to a temporary name in the same folder, flushed and fsync'ed, then renamed
into place and the folder fsync'ed: a domain application polling the folder sees a complete file
or none (rename is atomic within one file system). The metadata file comes last, so its presence
means the payload (and envelope) beside it are complete. Writing the same message again replaces
the files with identical ones: safe for at-least-once delivery.

The delivery worker writes a batch's files with the last folder fsync left to ``FolderSyncs``:
one fsync per folder per batch instead of one per message, before any of them is recorded as
delivered (docs/delivery.md "Batches"). The metadata file still comes after a folder fsync
that covers the payload's rename.

Names: ``<gemeentecode>_<berichttype>_<referentienummer>.xml`` for the payload (docs/delivery.md), with
``.envelope.xml`` and ``.json`` beside it.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path

from ggk_ebms.delivery.forwarders.base import Delivery, Forwarded
from ggk_ebms.errors import TransportError
from ggk_ebms.routing.table import DirectoryTarget
from ggk_ebms.spool import SpooledRange


def write_atomically(
    folder: Path, name: str, data: bytes | SpooledRange, *, sync_folder: bool = True
) -> Path:
    """Write ``data`` to ``folder/name`` via a temporary file, fsync and rename (a spooled
    range slice by slice, ggk_ebms/spool.py). The rename is durable once the folder is fsync'ed:
    here, unless ``sync_folder`` is False and the caller does it (``FolderSyncs``)."""
    final = folder / name
    temporary = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "xb") as handle:
            for piece in [data] if isinstance(data, bytes) else data.slices():
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if sync_folder:
        _fsync_folder(folder)
    return final


def _fsync_folder(folder: Path) -> None:
    """Make the renames into ``folder`` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _folder_error(folder: Path, exc: OSError) -> TransportError:
    # A full disk, a read-only or missing mount, or a path that is no folder: an operator can fix
    # all of these, so retry; after the last try the message is parked as Failed.
    return TransportError(
        f"cannot write to folder {folder}: {exc.strerror or type(exc).__name__}", retryable=True
    )


class FolderSyncs:
    """The folders a batch's forwards wrote into without their last fsync, synced together.

    Forwards run on several threads at once (delivery/parallel.py), so the set has a lock. A
    message written into a folder here is delivered only once ``sync`` has fsync'ed that folder
    without error; until then a crash may lose its rename, and it is not yet recorded.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: set[Path] = set()

    def add(self, folder: Path) -> None:
        with self._lock:
            self._folders.add(folder)

    def sync(self) -> dict[Path, TransportError]:
        """fsync every folder once; the folders that failed, with the error for their messages."""
        with self._lock:
            folders, self._folders = sorted(self._folders), set()
        failed: dict[Path, TransportError] = {}
        for folder in folders:
            try:
                _fsync_folder(folder)
            except OSError as exc:
                failed[folder] = _folder_error(folder, exc)
        return failed


class DirectoryForwarder:
    """``forward`` writes one message's files; with ``folders`` the last folder fsync is left
    to the caller's ``FolderSyncs.sync``, which must succeed before the message counts as
    delivered."""

    def __init__(self, target: DirectoryTarget, folders: FolderSyncs | None = None) -> None:
        self.target = target
        self.folders = folders

    def forward(self, delivery: Delivery) -> Forwarded:
        folder = self.target.path
        last = self.folders is None  # the folder fsync after the last rename, here or later
        try:
            folder.mkdir(parents=True, exist_ok=True)
            metadata, envelope = self.target.write_metadata, self.target.write_envelope
            # Payload and envelope renames need one folder fsync between them and the metadata's
            # rename (its presence means they are complete), and one after the last file.
            written = write_atomically(
                folder, delivery.filename, delivery.payload, sync_folder=not envelope and (metadata or last)
            )
            if envelope:
                write_atomically(
                    folder,
                    f"{delivery.base_name}.envelope.xml",
                    delivery.envelope,
                    sync_folder=metadata or last,
                )
            if metadata:
                text = json.dumps(delivery.metadata(), indent=2, ensure_ascii=False) + "\n"
                write_atomically(folder, f"{delivery.base_name}.json", text.encode("utf-8"), sync_folder=last)
        except OSError as exc:
            raise _folder_error(folder, exc) from None
        if self.folders is not None:
            self.folders.add(folder)
        return Forwarded(where=str(written))
