"""The MIME delimiter search (mime/related.py) against its definition, on hostile shapes.

The search runs in one regex pass; these properties check it finds exactly the delimiter lines
RFC 2046 §5.1.1 defines (``--boundary`` at a line start, then ``--`` or padding and a line end),
and that ``split_body`` answers any body with parts or a MimeError. Its cost on 30 MB of
near-delimiters is measured in bench, not here.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ggk_ebms.errors import MimeError
from ggk_ebms.mime import related


def reference_next_delimiter(body: bytes, delimiter: bytes, start: int) -> int:
    for pos in range(max(start, 0), len(body)):
        if body[pos : pos + 1] != b"\n" or not body.startswith(delimiter, pos + 1):
            continue
        after = pos + 1 + len(delimiter)
        if body.startswith(b"--", after):
            return pos + 1
        while after < len(body) and body[after] in (0x20, 0x09):
            after += 1
        if after < len(body) and body[after] in (0x0D, 0x0A):
            return pos + 1
    return -1


pieces = st.sampled_from([b"\n", b"\r\n", b"--", b"b", b"bX", b" ", b"\t", b"x", b"--b", b"\n--b"])
bodies = st.lists(pieces, max_size=60).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(body=bodies, start=st.integers(0, 20))
def test_search_matches_the_definition(body: bytes, start: int) -> None:
    assert related._next_delimiter(body, b"--b", start) == reference_next_delimiter(body, b"--b", start)


@settings(max_examples=300, deadline=None)
@given(body=bodies)
def test_split_gives_parts_or_a_mime_error(body: bytes) -> None:
    try:
        result = related.split_body('multipart/related; type="text/xml"; boundary="b"', body)
    except MimeError:
        return
    assert result.soap is not None


def test_near_delimiters_are_not_delimiters() -> None:
    body = b"--b\r\nContent-Type: text/xml\r\n\r\n<a/>" + b"\n--bX" * 10_000 + b"\r\n--b--\r\n"
    result = related.split_body('multipart/related; type="text/xml"; boundary="b"', body)
    assert result.attachments == ()
    assert result.soap.data.count(b"\n--bX") == 10_000
