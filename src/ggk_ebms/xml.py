"""The one hardened XML entry point. Every byte of XML the endpoint reads goes through ``parse``.

Rules (digest §12 "XXE, entity expansion, XSD loader reading files"; ebms-core IT #43):

- no DOCTYPE at all: a DTD has no place in SOAP 1.1 (SOAP 1.1 §3: "A SOAP message MUST NOT
  contain a Document Type Declaration"), in a CPA or a StUF envelope, so it is refused outright
  instead of being parsed and ignored; that also stops billion-laughs and external entities;
- no entity resolution, no network, no DTD loading, even if a later change let a DOCTYPE pass;
- a byte limit checked before parsing, and libxml2's own nesting limit (256 levels without
  ``huge_tree``) left in force;
- no processing instructions other than the XML declaration are ever interpreted.

``parse_large_text`` is the one exception to libxml2's default resource limits, for documents
whose legitimate content is one very large text node: the StUF-GGk envelope carries its payload
base64-encoded in ``xmlBestand``/``tekstBestand`` and the GGk allows the whole envelope up to 25 MB
(Specificaties GGk 2.1.04, versie 4, "maximale berichtgrootte"), while libxml2 refuses any text
node over 10 MB unless ``XML_PARSE_HUGE`` is set. ``huge_tree`` lifts that text-node cap and
libxml2's depth cap (256 to 2048); everything that makes XML dangerous stays off (no DOCTYPE, no
entities, no DTD, no network), the byte limit is still checked before parsing, so the memory a
document can take is bounded by that limit, and the nesting depth is checked again by us against
the same 256 levels the default parser enforces. See docs/security.md "Large StUF envelopes".
"""

from __future__ import annotations

import re
import threading
from typing import Final

from lxml import etree

from ggk_ebms.errors import UnsafeXmlError, XmlError, XmlTooLargeError

DEFAULT_MAX_BYTES: Final = 32 * 1024 * 1024

# A DOCTYPE can only stand in the prolog, so the first bytes tell. 64 KiB of prolog (comments,
# whitespace) is more than any honest document carries; past that we parse and check docinfo.
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
_PROLOG_SCAN: Final = 64 * 1024


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


_PARSER: Final = _new_parser()
# libxml2's default nesting limit without XML_PARSE_HUGE; parse_large_text keeps it.
DEFAULT_MAX_DEPTH: Final = 256
_LARGE = threading.local()  # one huge_tree parser per thread: lxml serialises a shared parser


def _large_parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_LARGE, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=True,
            remove_blank_text=False,
            collect_ids=False,
        )
        _LARGE.parser = parser
    return parser


def parse(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "XML") -> etree._Element:
    """Parse ``data`` safely and return the root element.

    ``what`` names the input in error messages ("CPA", "SOAP envelope"). Raises
    ``XmlTooLargeError``, ``UnsafeXmlError`` or ``XmlError``; never an lxml exception.
    """
    return _parse_with(_PARSER, data, max_bytes=max_bytes, what=what)


def parse_large_text(
    data: bytes, *, max_bytes: int, what: str = "XML", max_depth: int = DEFAULT_MAX_DEPTH
) -> etree._Element:
    """``parse`` for documents that may hold text nodes over libxml2's 10 MB (a StUF envelope's base64).

    Same refusals as ``parse``; ``max_bytes`` has no default on purpose: the caller states the
    limit of the document kind (the GGk envelope limit for StUF), which bounds the memory used.
    """
    root = _parse_with(_large_parser(), data, max_bytes=max_bytes, what=what)
    # huge_tree raises libxml2's depth limit to 2048; hold the document to our own. One XPath in C
    # (is there an element below max_depth levels?) instead of a Python walk over every element.
    if root.xpath(f"boolean(/{'*/' * max_depth}*)"):
        raise UnsafeXmlError(f"{what} nests elements deeper than {max_depth} levels")
    return root


def _parse_with(parser: etree.XMLParser, data: bytes, *, max_bytes: int, what: str) -> etree._Element:
    if len(data) > max_bytes:
        raise XmlTooLargeError(f"{what} is {len(data)} bytes, over the limit of {max_bytes} bytes")
    head = data[:_PROLOG_SCAN]
    if _DOCTYPE.search(head) or _ENTITY.search(head):
        raise UnsafeXmlError(f"{what} contains a DOCTYPE or entity declaration, which is not allowed")
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"{what} is not well-formed XML: {_syntax_message(exc)}") from None
    except ValueError as exc:  # e.g. a str with an encoding declaration; we only take bytes
        raise XmlError(f"{what} could not be parsed: {exc}") from None
    if root is None:
        raise XmlError(f"{what} is empty")
    # Belt and braces: the prolog scan above should have caught any DOCTYPE already.
    if root.getroottree().docinfo.internalDTD is not None:
        raise UnsafeXmlError(f"{what} contains a DOCTYPE, which is not allowed")
    return root


def _syntax_message(exc: etree.XMLSyntaxError) -> str:
    # lxml's message can quote document content; keep the parser's own words and position only.
    msg = str(exc.msg or exc).split("\n", 1)[0]
    return msg[:200]


def tostring(element: etree._Element) -> bytes:
    """Serialise an element as UTF-8 bytes without an XML declaration."""
    return etree.tostring(element, encoding="utf-8")


def qname(ns: str, local: str) -> str:
    """Clark notation ``{ns}local``."""
    return f"{{{ns}}}{local}"
