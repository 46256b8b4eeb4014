"""SOAP with Attachments: split and build ``multipart/related`` bodies (ebMS 2.0 §2.1, KVS ch. 5).

An ebMS message without payload travels as plain ``text/xml``; with payload it is a
``multipart/related; type="text/xml"; boundary=…; start="<root-cid>"`` body whose start part is the
SOAP envelope and whose other parts are the payloads, each with its own ``Content-ID`` (OASIS ebMS 2.0
§2.1; KVS5). Bodies reach 25 MB (GGk), so the splitter walks the body with ``bytes.find`` and copies
each part's bytes exactly once; the ``email`` package is not used (it copies, decodes and guesses).

The splitter is liberal where the wire varies in practice: CRLF or bare LF line ends, preamble and
epilogue, quoted or unquoted boundary, folded headers, and Content-Transfer-Encoding base64 or
quoted-printable besides the identity encodings (ebMS 2.0 §2.1, KVS ch. 5; our choice in docs/rules.md: accept
base64 CTE). The builder is strict: raw binary parts, CRLF, ``Content-ID: <id>``, start part
``text/xml; charset=UTF-8`` (ebMS 2.0 §2.1, KVS ch. 5).
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import mmap
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from ggk_ebms.errors import MimeError
from ggk_ebms.spool import SpooledRange

SOAP_CONTENT_TYPE: Final = "text/xml; charset=UTF-8"
DEFAULT_PART_CONTENT_TYPE: Final = "text/plain; charset=us-ascii"  # RFC 2045 §5.2

# RFC 2046 §5.1.1: boundary = 0*69<bchars> bcharsnospace
_BOUNDARY_OK: Final = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# Content-IDs we write: printable ASCII without the characters that would break a header,
# the angle brackets around it or the quoted ``start`` parameter (no '"', no '\\').
_CONTENT_ID_OK: Final = re.compile(r"[!#-;=?-\[\]-~]+")
_CONTENT_TYPE_OK: Final = re.compile(r"[\t -~]+")
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_IDENTITY_ENCODINGS: Final = frozenset({"", "binary", "8bit", "7bit"})
_MAX_HEADER_BLOCK: Final = 64 * 1024

# What a body can be split from: bytes, or the request body mapped from its spool file.
Body: TypeAlias = bytes | mmap.mmap


@dataclass(frozen=True)
class MimePart:
    """One part of a related body. ``content_id`` is without ``<>``; ``data`` is decoded.

    ``headers`` holds every part header as received, names in lower case, folded lines joined.

    ``spooled``: a part split out of a body mapped from its spool file (``split_body`` on an
    ``mmap``) stays in that file (ggk_ebms/spool.py) instead of being copied: a 25 MB StUF envelope is
    then not held a second time on the heap (docs/performance.md "Memory"). ``data`` is empty for
    such a part; ``content``, ``size``, ``head()`` and ``sha256()`` read either kind, and
    ``materialized()`` gives a part with its bytes for code that needs them whole (signature
    check, decryption).
    """

    content_id: str | None
    content_type: str
    data: bytes = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    spooled: SpooledRange | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.spooled is not None and self.data:
            raise ValueError("a spooled MIME part keeps its content in the spool file, not in data")

    @property
    def content(self) -> bytes | SpooledRange:
        return self.data if self.spooled is None else self.spooled

    @property
    def size(self) -> int:
        return len(self.data) if self.spooled is None else self.spooled.size

    def head(self, length: int) -> bytes:
        """The first ``length`` bytes (a sniff at the content without reading all of it)."""
        return self.data[:length] if self.spooled is None else self.spooled.head(length)

    def sha256(self) -> str:
        """Hex SHA-256 of the content, a spooled one read slice by slice."""
        return hashlib.sha256(self.data).hexdigest() if self.spooled is None else self.spooled.sha256()

    def materialized(self) -> MimePart:
        """This part with its content in ``data`` (a copy out of the spool file if spooled)."""
        if self.spooled is None:
            return self
        return MimePart(self.content_id, self.content_type, self.spooled.view().tobytes(), self.headers)


@dataclass(frozen=True)
class RelatedBody:
    """The SOAP envelope part and the payload parts, in body order."""

    soap: MimePart
    attachments: tuple[MimePart, ...]


@dataclass(frozen=True)
class ContentType:
    """A parsed Content-Type header: lower-case media type and lower-case parameter names."""

    media_type: str
    params: Mapping[str, str]


def parse_content_type(value: str) -> ContentType:
    """Parse ``type/subtype; name=value; name="quoted \\" value"`` (RFC 2045 §5.1).

    Raises MimeError on a value without a media type; a malformed parameter ends the list.
    """
    text = value.strip()
    end = _param_start(text, 0)
    media_type = text[:end].strip().lower()
    if "/" not in media_type or not all(_TOKEN.fullmatch(p) for p in media_type.split("/", 1)):
        raise MimeError(f"Content-Type {_shorten(value)!r} has no valid media type")
    params: dict[str, str] = {}
    pos = end
    while pos < len(text) and text[pos] == ";":
        pos = _skip_space(text, pos + 1)
        eq = text.find("=", pos)
        if eq < 0:
            break
        name = text[pos:eq].strip().lower()
        if not _TOKEN.fullmatch(name):
            break
        pos = _skip_space(text, eq + 1)
        if pos < len(text) and text[pos] == '"':
            param_value, pos = _quoted_string(text, pos)
        else:
            stop = _param_start(text, pos)
            param_value, pos = text[pos:stop].strip(), stop
        params.setdefault(name, param_value)
        pos = _skip_space(text, pos)
    return ContentType(media_type, params)


def split_body(content_type: str, body: Body, *, max_parts: int = 100) -> RelatedBody:
    """Split an HTTP request body into the SOAP part and its attachments.

    ``text/xml`` (any parameters) is the envelope alone. ``multipart/related`` yields the part named
    by ``start`` (or the first part when ``start`` is absent) as SOAP and every other part, in body
    order, as attachments. Raises MimeError with a message that names the problem.

    ``body`` may be an ``mmap`` of the spooled request body: the attachments sent without a
    transfer encoding are then ranges of it (``MimePart.spooled``), not copies, and the SOAP part
    gets bytes of its own, as the XML parser needs them.
    """
    parsed = parse_content_type(content_type)
    if parsed.media_type == "text/xml":
        return RelatedBody(MimePart(None, content_type.strip(), body[:], {}), ())
    if parsed.media_type != "multipart/related":
        raise MimeError(
            f"unsupported Content-Type {parsed.media_type!r}: expected text/xml or multipart/related"
        )
    root_type = parsed.params.get("type")
    if root_type is not None and root_type.strip().lower() != "text/xml":
        # SwA 1.1 §3: the root of an ebMS 2.0 message is a SOAP 1.1 envelope, type text/xml.
        raise MimeError(f"multipart/related type {_shorten(root_type)!r} is not text/xml")
    boundary = parsed.params.get("boundary")
    if not boundary:
        raise MimeError("multipart/related Content-Type has no boundary parameter")
    parts = _split_parts(body, boundary.encode("latin-1", "replace"), max_parts)
    if isinstance(body, mmap.mmap):
        SpooledRange(body).release()  # the scan read every page of it (ggk_ebms/spool.py)
    return _pick_start(parts, parsed.params.get("start"))


def build_related(
    soap: bytes,
    attachments: Sequence[MimePart],
    *,
    boundary: str | None = None,
    start_id: str | None = None,
) -> tuple[str, bytes]:
    """Build a SwA body: returns (Content-Type header value, body bytes); see ``related_pieces``."""
    header, pieces = related_pieces(soap, attachments, boundary=boundary, start_id=start_id)
    return header, b"".join(pieces)


def related_pieces(
    soap: bytes,
    attachments: Sequence[MimePart],
    *,
    boundary: str | None = None,
    start_id: str | None = None,
) -> tuple[str, list[bytes]]:
    """Build a SwA body as consecutive pieces: (Content-Type header value, pieces).

    The parts' bytes are pieces of their own, not copied into one body: a sender can stream them
    one after the other, so a 25 MB StUF envelope is not held a second time for the request.

    Parts are written raw (no Content-Transfer-Encoding), with CRLF line ends, ``Content-ID: <id>``
    and their own Content-Type; the start part is ``text/xml; charset=UTF-8`` (ebMS 2.0 §2.1, KVS ch. 5).
    Without a ``boundary`` one is derived from a hash of the content, so the function stays pure and the
    boundary never occurs inside a part. A given boundary that occurs in a part raises MimeError,
    as do Content-IDs or Content-Types that would break the header they go in.
    """
    ids: set[str] = set()
    for part in attachments:
        if part.content_id is None or not _CONTENT_ID_OK.fullmatch(part.content_id):
            raise MimeError(f"attachment Content-ID {part.content_id!r} cannot be written in a header")
        if not _CONTENT_TYPE_OK.fullmatch(part.content_type):
            raise MimeError(
                f"attachment Content-Type {_shorten(part.content_type)!r} is not a valid header value"
            )
        if part.content_id in ids:
            raise MimeError(f"duplicate Content-ID <{part.content_id}>")
        ids.add(part.content_id)
    fingerprint = _fingerprint(soap, attachments)
    if start_id is None:
        start_id = f"envelope-{fingerprint[:24]}@ggk-ebms"
    if not _CONTENT_ID_OK.fullmatch(start_id):
        raise MimeError(f"start Content-ID {start_id!r} cannot be written in a header")
    if start_id in ids:
        raise MimeError(f"start Content-ID <{start_id}> is also used by an attachment")
    datas = [soap, *(p.data for p in attachments)]
    if boundary is None:
        boundary = _free_boundary(fingerprint, datas)
    elif not _BOUNDARY_OK.fullmatch(boundary):
        raise MimeError("boundary must be 1-70 RFC 2046 bchars, not ending in a space")
    elif any(b"--" + boundary.encode("ascii") in data for data in datas):
        raise MimeError("boundary occurs inside a part; choose another")
    delimiter = b"--" + boundary.encode("ascii")
    chunks: list[bytes] = []
    heads = [(SOAP_CONTENT_TYPE, start_id)] + [(p.content_type, p.content_id or "") for p in attachments]
    for (ctype, cid), data in zip(heads, datas, strict=True):
        chunks.append(delimiter + b"\r\nContent-Type: " + ctype.encode("ascii") + b"\r\nContent-ID: <")
        chunks.append(cid.encode("ascii") + b">\r\n\r\n")
        chunks.append(data)
        chunks.append(b"\r\n")
    chunks.append(delimiter + b"--\r\n")
    header = f'multipart/related; type="text/xml"; boundary="{boundary}"; start="<{start_id}>"'
    return header, chunks


# --- splitting -------------------------------------------------------------------------------------


def _split_parts(body: Body, boundary: bytes, max_parts: int) -> list[MimePart]:
    delimiter = b"--" + boundary
    pos = _first_delimiter(body, delimiter)
    if pos < 0:
        raise MimeError("wrong boundary: the boundary of the Content-Type never occurs in the body")
    parts: list[MimePart] = []
    seen: set[str] = set()
    view = memoryview(body)
    while True:
        after = pos + len(delimiter)
        if _starts(body, b"--", after):
            break  # close delimiter; the rest is epilogue (RFC 2046 §5.1.1)
        start = _line_end(body, after)
        if start < 0:
            raise MimeError("truncated body: a boundary line does not end")
        nxt = _next_delimiter(body, delimiter, start)
        if nxt < 0:
            raise MimeError("truncated body: no closing boundary")
        if len(parts) >= max_parts:
            raise MimeError(f"too many MIME parts: more than {max_parts}")
        end = nxt - 2 if nxt >= 2 and body[nxt - 2] == 0x0D else nxt - 1  # drop the CRLF/LF before it
        part = _read_part(body, view, start, end, nxt, len(parts) + 1)
        if part.content_id is not None:
            if part.content_id in seen:
                raise MimeError(f"duplicate Content-ID <{part.content_id}>")
            seen.add(part.content_id)
        parts.append(part)
        pos = nxt
    if not parts:
        raise MimeError("multipart/related body has no parts")
    return parts


def _starts(body: Body, prefix: bytes, pos: int) -> bool:
    """``bytes.startswith`` at ``pos`` for bytes and mmap alike (mmap has no startswith)."""
    return body[pos : pos + len(prefix)] == prefix


def _first_delimiter(body: Body, delimiter: bytes) -> int:
    if _starts(body, delimiter, 0) and _is_delimiter(body, delimiter, 0):
        return 0
    return _next_delimiter(body, delimiter, 0)


def _next_delimiter(body: Body, delimiter: bytes, start: int) -> int:
    """Position of the next ``--boundary`` that starts a line and is a real delimiter line.

    One compiled pattern finds the next real delimiter line (RFC 2046 §5.1.1: ``--`` or transport
    padding and a line end after the boundary) in a single pass of the regex engine, so a body
    full of near-delimiters (``\n--boundaryX``) costs no Python-level step per near miss: linear
    in the body size at C speed.
    """
    match = _delimiter_pattern(delimiter).search(body, start)
    return -1 if match is None else match.start() + 1


@functools.lru_cache(maxsize=64)
def _delimiter_pattern(delimiter: bytes) -> re.Pattern[bytes]:
    return re.compile(b"\n" + re.escape(delimiter) + rb"(?:--|[ \t]*[\r\n])")


def _is_delimiter(body: Body, delimiter: bytes, pos: int) -> bool:
    """RFC 2046 §5.1.1: the delimiter is followed by ``--`` or transport padding and a line end.

    A line that merely starts with the boundary and goes on is content, not a delimiter.
    """
    after = pos + len(delimiter)
    if _starts(body, b"--", after):
        return True
    while after < len(body) and body[after] in (0x20, 0x09):
        after += 1
    return after < len(body) and body[after] in (0x0D, 0x0A)


def _line_end(body: Body, pos: int) -> int:
    """Index just past the line end that follows ``pos`` (after transport padding), or -1."""
    nl = body.find(b"\n", pos)
    return -1 if nl < 0 else nl + 1


def _read_part(body: Body, view: memoryview, start: int, end: int, nxt: int, number: int) -> MimePart:
    """The part between ``start`` and the delimiter at ``nxt``; its content ends at ``end``.

    The line end before a delimiter belongs to the delimiter (RFC 2046 §5.1.1), so a part whose
    header block runs into it has empty content.
    """
    header_end, data_start = _header_block(body, start, nxt, number)
    headers = _parse_headers(body[start:header_end].decode("latin-1"), number)
    if not headers:
        raise MimeError(f"MIME part {number} has no headers")
    content_type = headers.get("content-type", DEFAULT_PART_CONTENT_TYPE)
    content_id = _content_id(headers.get("content-id"))
    stop = max(end, data_start)
    cte = headers.get("content-transfer-encoding", "").strip().lower()
    if isinstance(body, mmap.mmap) and cte in _IDENTITY_ENCODINGS:
        return MimePart(content_id, content_type, b"", headers, SpooledRange(body, data_start, stop))
    return MimePart(content_id, content_type, _decode(view[data_start:stop], cte, number), headers)


def _header_block(body: Body, start: int, end: int, number: int) -> tuple[int, int]:
    """(end of the header lines, start of the content) of the part starting at ``start``."""
    if _starts(body, b"\r\n", start):
        return start, start + 2
    if _starts(body, b"\n", start):
        return start, start + 1
    limit = min(end, start + _MAX_HEADER_BLOCK)
    candidates = [(p, p + 3) for p in [body.find(b"\n\r\n", start, limit)] if p >= 0]
    candidates += [(p, p + 2) for p in [body.find(b"\n\n", start, limit)] if p >= 0]
    if not candidates:
        raise MimeError(f"MIME part {number} has no header block (no empty line after its headers)")
    return min(candidates)


def _parse_headers(text: str, number: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    name: str | None = None
    for raw in text.replace("\r\n", "\n").split("\n"):
        if not raw:
            continue
        if raw[0] in " \t":  # RFC 5322 §2.2.3 folding: continues the previous header
            if name is None:
                raise MimeError(f"MIME part {number} starts with a continuation line")
            headers[name] = f"{headers[name]} {raw.strip()}"
            continue
        colon = raw.find(":")
        if colon <= 0 or not _TOKEN.fullmatch(raw[:colon].strip()):
            raise MimeError(f"MIME part {number} has a malformed header line")
        name = raw[:colon].strip().lower()
        value = raw[colon + 1 :].strip()
        headers[name] = value if name not in headers else f"{headers[name]}, {value}"
    return headers


def _content_id(value: str | None) -> str | None:
    if value is None:
        return None
    cid = value.strip()
    if cid.startswith("<") and cid.endswith(">"):
        cid = cid[1:-1].strip()
    return cid or None


def _decode(data: memoryview, cte: str, number: int) -> bytes:
    if cte in _IDENTITY_ENCODINGS:
        return bytes(data)
    if cte == "base64":
        try:
            # Line breaks are part of base64 transfer encoding (RFC 2045 §6.8); anything else
            # outside the alphabet means a damaged part, not something to skip silently.
            return binascii.a2b_base64(bytes(data).translate(None, b" \t\r\n"), strict_mode=True)
        except binascii.Error:
            raise MimeError(f"MIME part {number} is not valid base64") from None
    if cte == "quoted-printable":
        return binascii.a2b_qp(bytes(data))
    raise MimeError(f"MIME part {number} has unsupported Content-Transfer-Encoding {_shorten(cte)!r}")


def _pick_start(parts: list[MimePart], start: str | None) -> RelatedBody:
    if start is None:
        return RelatedBody(_owned(parts[0]), tuple(parts[1:]))
    wanted = _content_id(start)
    for index, part in enumerate(parts):
        if part.content_id == wanted:
            return RelatedBody(_owned(part), tuple(parts[:index] + parts[index + 1 :]))
    raise MimeError("start part missing: no part has the Content-ID named by the start parameter")


def _owned(part: MimePart) -> MimePart:
    """The SOAP part with bytes of its own: the XML parser and the signature check read bytes."""
    return part.materialized()


# --- Content-Type parameter helpers -----------------------------------------------------------------


def _param_start(text: str, pos: int) -> int:
    semi = text.find(";", pos)
    return len(text) if semi < 0 else semi


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _quoted_string(text: str, pos: int) -> tuple[str, int]:
    """RFC 822 quoted-string starting at the opening quote: (unescaped value, index after it)."""
    close = text.find('"', pos + 1)
    if close >= 0 and "\\" not in text[pos + 1 : close]:
        # No quoted-pair before the first quote: that quote closes it, and the value is verbatim
        # (the usual case: every multipart/related header carries two or three quoted parameters).
        return text[pos + 1 : close], close + 1
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise MimeError("Content-Type has an unterminated quoted parameter")


# --- building helpers --------------------------------------------------------------------------------


def _fingerprint(soap: bytes, attachments: Sequence[MimePart]) -> str:
    digest = hashlib.sha256(soap)
    for part in attachments:
        digest.update(bytes.fromhex(part.sha256()))
    return digest.hexdigest()


def _free_boundary(fingerprint: str, datas: Sequence[bytes]) -> str:
    """A boundary derived from the content hash that occurs in none of the parts.

    A SHA-256-derived boundary colliding with content is astronomically unlikely, but the check
    makes it certain; the counter moves on in that case.
    """
    counter = 0
    while True:
        candidate = f"----=_Part_{fingerprint[:32]}_{counter}"
        needle = b"--" + candidate.encode("ascii")
        if not any(needle in data for data in datas):
            return candidate
        counter += 1


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
