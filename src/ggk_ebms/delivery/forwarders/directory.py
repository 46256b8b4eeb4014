"""Directory target: write the payload (and optionally envelope and metadata) into a folder.

Each file is written to a temporary name in the same folder, flushed and fsync'ed, then renamed
into place and the folder fsync'ed: a domain application polling the folder sees a complete file
or none (rename is atomic within one file system). The metadata file comes last, so its presence
means the payload (and envelope) beside it are complete. Writing the same message again replaces
the files with identical ones: safe for at-least-once delivery.

Names: ``<gemeentecode>_<berichttype>_<referentienummer>.xml`` for the payload (docs/delivery.md), with
``.envelope.xml`` and ``.json`` beside it.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from ggk_ebms.delivery.forwarders.base import Delivery, Forwarded
from ggk_ebms.errors import TransportError
from ggk_ebms.routing.table import DirectoryTarget
from ggk_ebms.spool import SpooledRange


def write_atomically(folder: Path, name: str, data: bytes | SpooledRange) -> Path:
    """Write ``data`` to ``folder/name`` via a temporary file, fsync and rename (a spooled
    range slice by slice, ggk_ebms/spool.py)."""
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
    _fsync_dir(folder)
    return final


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class DirectoryForwarder:
    def __init__(self, target: DirectoryTarget) -> None:
        self.target = target

    def forward(self, delivery: Delivery) -> Forwarded:
        folder = self.target.path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            written = write_atomically(folder, delivery.filename, delivery.payload)
            if self.target.write_envelope:
                write_atomically(folder, f"{delivery.base_name}.envelope.xml", delivery.envelope)
            if self.target.write_metadata:
                text = json.dumps(delivery.metadata(), indent=2, ensure_ascii=False) + "\n"
                write_atomically(folder, f"{delivery.base_name}.json", text.encode("utf-8"))
        except OSError as exc:
            # A full disk, a read-only or missing mount, or a path that is no folder: an operator
            # can fix all of these, so retry; after the last try the message is parked as Failed.
            raise TransportError(
                f"cannot write to folder {folder}: {exc.strerror or type(exc).__name__}", retryable=True
            ) from None
        return Forwarded(where=str(written))
