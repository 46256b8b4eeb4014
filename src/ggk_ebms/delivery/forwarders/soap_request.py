"""The SOAP 1.1 request an HTTP target gets, streamed, and the reading of its answer. No I/O.

Our WSDL (``wsdl/ggk-ontvang-asynchroon.wsdl``) is document/literal with the StUF message itself
as the one child of ``soap:Body``. So the request is three pieces: the SOAP envelope's opening
tags, the StUF envelope as received (its XML declaration left off), and the closing tags. The
StUF bytes are never parsed again nor copied: a 25 MB envelope (the GGk limit) goes out as it
came in, base64 and all. Only an envelope that cannot stand inside a UTF-8 SOAP body as it is
(another encoding declared, or something other than whitespace and comments before its root)
is re-serialised, as are the older envelope versions, whose root the WSDL names in the ggk0210
namespace (the interface carries the current envelope version, ggk0210, spec 2.1.04).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from lxml import etree

from ggk_ebms import ns
from ggk_ebms.errors import XmlError
from ggk_ebms.stuf.envelope import MAX_RECEIVE_BYTES
from ggk_ebms.stuf.model import MessageKind
from ggk_ebms.xml import parse, parse_large_text, qname

# soapAction per operation, as in the WSDL binding (the GGk's own actions for these messages).
SOAP_ACTIONS: Final = {
    MessageKind.DI01: "http://www.stufstandaarden.nl/koppelvlak/ggk0210/ggk_Di01",
    MessageKind.DU01: "http://www.stufstandaarden.nl/koppelvlak/ggk0210/ggk_Du01",
    MessageKind.FO01: "http://www.egem.nl/StUF/StUF0301/Fo01",
}
CONTENT_TYPE: Final = 'text/xml; charset="utf-8"'  # SOAP 1.1 over HTTP
MAX_ANSWER_BYTES: Final = 1024 * 1024  # a Bv03 or a Fault is a few hundred bytes

_OPEN: Final = (
    f'<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="{ns.SOAP_ENV}"><soap:Body>'
).encode()
_CLOSE: Final = b"</soap:Body></soap:Envelope>\n"
_DECLARATION: Final = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml\s[^>]*?\?>")
_ENCODING: Final = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_LEADING_COMMENTS: Final = re.compile(rb"(?:\s|<!--(?:[^-]|-[^-])*-->)*")
_ROOTS: Final = {
    MessageKind.DI01: qname(ns.GGK_0210, "envelopHeenbericht-ggk_Di01"),
    MessageKind.DU01: qname(ns.GGK_0210, "envelopRetourbericht-ggk_Du01"),
    MessageKind.FO01: qname(ns.STUF, "Fo01Bericht"),
}


class RequestBody(io.RawIOBase):
    """Pieces of bytes read one after the other, with a length (so HTTP sends Content-Length)."""

    def __init__(self, pieces: Sequence[bytes | memoryview]) -> None:
        super().__init__()
        self._pieces = [memoryview(p) for p in pieces]
        self._length = sum(len(p) for p in self._pieces)
        self._index = 0
        self._offset = 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._index < len(self._pieces):
            piece = self._pieces[self._index]
            if self._offset < len(piece):
                n = min(len(buffer), len(piece) - self._offset)
                buffer[:n] = piece[self._offset : self._offset + n]
                self._offset += n
                return n
            self._index += 1
            self._offset = 0
        return 0


def request_body(envelope: bytes, kind: MessageKind) -> RequestBody:
    """The SOAP request around ``envelope`` (a StUF message that passed ``parse_envelope``)."""
    body = _as_is(envelope, kind)
    if body is None:
        body = memoryview(_reserialised(envelope, kind))
    return RequestBody([_OPEN, body, _CLOSE])


def _as_is(envelope: bytes, kind: MessageKind) -> memoryview | None:
    """The envelope without its declaration, when it can go into the Body unchanged."""
    view = memoryview(envelope)
    declaration = _DECLARATION.match(envelope)
    start = 0
    if declaration is not None:
        encoding = _ENCODING.search(declaration.group(0))
        if encoding is not None and encoding.group(1).lower() not in (b"utf-8", b"utf8"):
            return None
        start = declaration.end()
    elif envelope.startswith(b"\xef\xbb\xbf"):
        start = 3
    head = _LEADING_COMMENTS.match(envelope, start)
    root_at = head.end() if head is not None else start
    expected = _ROOTS.get(kind)
    if expected is None or not _root_is(envelope, root_at, expected):
        return None
    return view[start:]


def _root_is(envelope: bytes, at: int, expected: str) -> bool:
    """Whether the element starting at ``at`` is ``expected`` (Clark name); a peek at its start tag."""
    end = envelope.find(b">", at, at + 4096)
    if end < 0 or envelope[at : at + 1] != b"<" or envelope[at + 1 : at + 2] in (b"!", b"?"):
        return False
    try:  # the start tag alone, closed, tells the root's namespace and name
        tag = envelope[at : end + 1]
        closed = tag if tag.endswith(b"/>") else tag[:-1] + b"/>"
        return parse(closed, max_bytes=8192, what="StUF root").tag == expected
    except XmlError:
        return False


def _reserialised(envelope: bytes, kind: MessageKind) -> bytes:
    root = parse_large_text(envelope, max_bytes=MAX_RECEIVE_BYTES, what="StUF envelope")
    if root.tag == qname(ns.SOAP_ENV, "Envelope"):  # the WUS form: its Body's one message
        body = root.find(qname(ns.SOAP_ENV, "Body"))
        root = body[0] if body is not None and len(body) else root
    expected = _ROOTS.get(kind)
    if expected is not None and root.tag != expected:
        renamed = etree.Element(expected, nsmap={"GGK": etree.QName(expected).namespace or ""})
        renamed.extend(list(root))
        root = renamed
    return etree.tostring(root, encoding="utf-8")


@dataclass(frozen=True)
class Answer:
    """What the application's answer means: delivered, or a failure worth retrying or not."""

    delivered: bool
    retryable: bool = False
    reason: str = ""


def read_answer(status: int, body: bytes) -> Answer:
    """A Bv03 in a 200 is delivered; a Fault with faultcode Server, 5xx, 408 and 429 are worth
    another try; any other Fault and other 4xx are the application refusing this message."""
    root = None
    if body.strip():
        try:
            root = parse(body, max_bytes=MAX_ANSWER_BYTES, what="SOAP answer")
        except XmlError:
            root = None
    fault = None if root is None else root.find(f"{qname(ns.SOAP_ENV, 'Body')}/{qname(ns.SOAP_ENV, 'Fault')}")
    if fault is not None:
        code = (fault.findtext("faultcode") or "").strip()
        return Answer(False, code.endswith("Server"), f"a SOAP Fault ({code or 'no faultcode'})")
    if status != 200:
        return Answer(False, status >= 500 or status in (408, 429), f"HTTP {status}")
    child = None if root is None else root.find(f"{qname(ns.SOAP_ENV, 'Body')}/*")
    if child is None or child.tag != qname(ns.STUF, "Bv03Bericht"):
        return Answer(False, True, "HTTP 200 without a StUF Bv03")
    return Answer(True)
