"""Open an Aanleveren upload safely: a single ``.xml`` or a ``.zip`` of ``.xml`` files.

The GGk portal's rules (Aanleveren manual, IB handleidingen GGk and berichtuitwisseling): one ``.zip`` of at
most 1 GB, no folders, only ``.xml`` files, one StUF envelope of at most 25 MB per file. A file that is not a
``.zip`` (or a single ``.xml``, which we accept too), over the size cap or not a valid ZIP is
refused as a whole, without a verslag (``UploadRefused``). Everything else is judged per entry, so
one bad entry never hides the good ones.

Against zip bombs and path tricks (IB handleiding berichtuitwisseling lists ``evil.zip``,
``zero_files_1000_x_1.zip`` and
``zero_files_1_x_10000000.zip`` as Afgekeurd): a cap on the number of entries, on each entry's
size (read with a hard stop, never trusting the declared size), on the compression ratio, and on
the total unpacked size; names with folders, ``..``, absolute paths, drive letters or backslashes,
symbolic links and encrypted entries are refused. Nothing is ever written to disk: entries are
read into memory one at a time, at most 25 MB each.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO, Final

from ggk_ebms.aanlevering import checks
from ggk_ebms.aanlevering.checks import Fout
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.stuf.envelope import MAX_SEND_BYTES

_CHUNK: Final = 64 * 1024


class UploadRefused(GgkEbmsError):
    """The whole upload is refused (not a .zip, too large, not a valid ZIP): no batch, no verslag."""


@dataclass(frozen=True)
class Limits:
    max_zip_bytes: int = 1_000_000_000
    max_entries: int = 10_000
    max_ratio: int = 200
    max_total_bytes: int = 4_000_000_000
    max_entry_bytes: int = MAX_SEND_BYTES  # GGk: 25 000 000 bytes per StUF envelope (IB003)


@dataclass(frozen=True)
class Entry:
    """One file of the upload: its bytes, or why it was not read."""

    name: str
    size: int  # bytes read, or the declared size when not read
    data: bytes | None
    fout: Fout | None


def upload_kind(bestandsnaam: str) -> str:
    """'zip' or 'xml' by the name's extension (any case); UploadRefused otherwise."""
    suffix = PurePosixPath(bestandsnaam.replace("\\", "/")).suffix.lower()
    if suffix in (".zip", ".xml"):
        return suffix[1:]
    raise UploadRefused(f"{bestandsnaam}: alleen .zip- of .xml-bestanden kunnen worden aangeleverd")


def check_size(bestandsnaam: str, size: int, limits: Limits) -> None:
    if size > limits.max_zip_bytes:
        raise UploadRefused(
            f"{bestandsnaam}: bestand is {size} bytes, "
            f"groter dan het maximum van {limits.max_zip_bytes} bytes"
        )


def open_zip(stream: BinaryIO, bestandsnaam: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise UploadRefused(f"{bestandsnaam}: geen geldig ZIP-bestand ({exc})") from None


def _name_fout(info: zipfile.ZipInfo) -> Fout | None:
    name = info.filename
    mode = info.external_attr >> 16
    if info.is_dir():
        return Fout(checks.MAP, f"'{name}' is een map; zet de bestanden direct in de ZIP")
    if stat.S_ISLNK(mode):
        return Fout(checks.PAD, f"'{name}' is een symbolische koppeling")
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return Fout(checks.PAD, f"'{name}' is een absoluut pad of bevat een backslash")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        return Fout(checks.PAD, f"'{name}' verwijst buiten de ZIP ('..')")
    if len(parts) != 1:
        return Fout(checks.MAP, f"'{name}' staat in een map; zet de bestanden direct in de ZIP")
    if not name.lower().endswith(".xml"):
        return Fout(checks.GEEN_XML, f"'{name}' heeft geen extensie .xml")
    if info.flag_bits & 0x1:
        return Fout(checks.BESCHADIGD, f"'{name}' is versleuteld")
    return None


def _ratio_fout(name: str, unpacked: int, packed: int, limits: Limits) -> Fout | None:
    if unpacked > limits.max_ratio * max(packed, 1) and unpacked > _CHUNK:
        return Fout(
            checks.ZIPBOM,
            f"'{name}' pakt uit tot meer dan {limits.max_ratio} keer de gecomprimeerde grootte "
            f"({packed} bytes)",
        )
    return None


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits, budget: int) -> Entry:
    """Read one entry with hard stops; the declared sizes are only a first filter."""
    cap = min(limits.max_entry_bytes, budget)
    chunks: list[bytes] = []
    total = 0
    try:
        with archive.open(info) as member:
            while True:
                chunk = member.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if (fout := _ratio_fout(info.filename, total, info.compress_size, limits)) is not None:
                    return Entry(info.filename, total, None, fout)
                if total > cap:
                    if cap < limits.max_entry_bytes:
                        return Entry(
                            info.filename,
                            total,
                            None,
                            Fout(
                                checks.ZIPBOM,
                                f"de ZIP pakt uit tot meer dan {limits.max_total_bytes} bytes in totaal",
                            ),
                        )
                    return Entry(
                        info.filename,
                        total,
                        None,
                        Fout(checks.TE_GROOT, f"meer dan {limits.max_entry_bytes} bytes (maximum 25 MB)"),
                    )
                chunks.append(chunk)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        RuntimeError,
        OSError,
        EOFError,
    ) as exc:
        return Entry(info.filename, total, None, Fout(checks.BESCHADIGD, f"'{info.filename}': {exc}"))
    return Entry(info.filename, total, b"".join(chunks), None)


def zip_entries(archive: zipfile.ZipFile, bestandsnaam: str, limits: Limits) -> Iterator[Entry]:
    """Every entry of the ZIP, read or refused. Too many entries: one refusal for the whole ZIP."""
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        yield Entry(
            bestandsnaam,
            len(infos),
            None,
            Fout(
                checks.TE_VEEL, f"{len(infos)} bestanden, maximaal {limits.max_entries} (mogelijke zip-bom)"
            ),
        )
        return
    if not infos:
        yield Entry(bestandsnaam, 0, None, Fout(checks.LEEG, "de ZIP is leeg"))
        return
    unpacked = 0
    for info in infos:
        fout = _name_fout(info)
        if fout is None and info.file_size > limits.max_entry_bytes:
            fout = Fout(checks.TE_GROOT, f"{info.file_size} bytes, maximaal {limits.max_entry_bytes} (25 MB)")
        if fout is None:
            fout = _ratio_fout(info.filename, info.file_size, info.compress_size, limits)
        if fout is not None:
            yield Entry(info.filename, info.file_size, None, fout)
            continue
        entry = _read(archive, info, limits, limits.max_total_bytes - unpacked)
        unpacked += entry.size
        yield entry


def single_xml(bestandsnaam: str, data: bytes, limits: Limits) -> Entry:
    """A single uploaded .xml file as the one entry of its batch."""
    if len(data) > limits.max_entry_bytes:
        return Entry(
            bestandsnaam,
            len(data),
            None,
            Fout(checks.TE_GROOT, f"{len(data)} bytes, maximaal {limits.max_entry_bytes} (25 MB)"),
        )
    return Entry(bestandsnaam, len(data), data, None)
