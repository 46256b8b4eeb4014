"""Spooled ranges (ggk_ebms/spool.py) and the MIME split over a mapped body (mime/related.py):
the bytes read through a range are the bytes of the file, in any slicing, after pages were dropped."""

from __future__ import annotations

import hashlib
import mmap
import tempfile

import pytest

from ggk_ebms.mime.related import MimePart, build_related, split_body
from ggk_ebms.spool import SpooledRange, size_of, spool, whole

CONTENT = bytes(range(256)) * 20_000 + b"tail"  # 5 MB and a bit: several slices, no page alignment


def mapped(data: bytes) -> mmap.mmap:
    with tempfile.TemporaryFile() as handle:
        handle.write(data)
        handle.flush()
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


@pytest.mark.parametrize(("start", "end"), [(0, len(CONTENT)), (7, len(CONTENT) - 3), (4095, 4097), (10, 10)])
def test_slices_hash_and_head_read_exactly_the_range(start: int, end: int) -> None:
    part = SpooledRange(mapped(CONTENT), start, end)
    expected = CONTENT[start:end]
    assert part.size == len(expected) == size_of(part)
    assert b"".join(bytes(piece) for piece in part.slices(1_000_003)) == expected
    assert part.sha256() == hashlib.sha256(expected).hexdigest()
    assert part.head(100) == expected[:100]
    assert whole(part) == expected


def test_released_pages_read_back_the_same_bytes() -> None:
    part = SpooledRange(mapped(CONTENT))
    first = part.view().tobytes()
    part.release()
    assert part.view().tobytes() == first == CONTENT


def test_spool_writes_pieces_to_a_mapped_file() -> None:
    assert whole(spool([CONTENT[:3], CONTENT[3:]])) == CONTENT
    empty = spool([])
    assert empty.size == 0 and whole(empty) == b""


def _body(attachment: bytes) -> tuple[str, bytes]:
    return build_related(
        b"<soap/>",
        [MimePart("payload@x", "application/xml", attachment), MimePart("small@x", "text/plain", b"x")],
    )


def test_split_over_a_mapped_body_leaves_attachments_in_the_file() -> None:
    content_type, body = _body(CONTENT)
    from_bytes = split_body(content_type, body)
    from_file = split_body(content_type, mapped(body))
    # The SOAP part gets bytes of its own (the XML parser reads bytes); attachments stay spooled.
    assert from_file.soap.spooled is None and from_file.soap.data == b"<soap/>"
    assert [p.spooled is not None for p in from_file.attachments] == [True, True]
    assert [p.data for p in from_file.attachments] == [b"", b""]
    for spooled, plain in zip(from_file.attachments, from_bytes.attachments, strict=True):
        assert spooled.size == plain.size
        assert spooled.sha256() == plain.sha256()
        assert spooled.head(10) == plain.head(10)
        assert spooled.materialized() == plain
        assert spooled.content_id == plain.content_id and spooled.headers == plain.headers


def test_a_transfer_encoded_part_of_a_mapped_body_is_decoded_into_bytes() -> None:
    body = (
        b"--B\r\nContent-Type: text/xml\r\nContent-ID: <soap@x>\r\n\r\n<soap/>\r\n"
        b"--B\r\nContent-Type: text/plain\r\nContent-ID: <p@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"aGFsbG8=\r\n--B--\r\n"
    )
    parts = split_body('multipart/related; type="text/xml"; boundary=B; start="<soap@x>"', mapped(body))
    [part] = parts.attachments
    assert part.spooled is None and part.data == b"hallo"


def test_a_spooled_part_keeps_its_content_out_of_data() -> None:
    with pytest.raises(ValueError, match="spool file"):
        MimePart("p@x", "text/plain", b"x", {}, SpooledRange(mapped(b"abc")))
