"""The one hardened XML entry point. Every byte of XML the endpoint reads goes through ``parse``.

Rules (digest §12 "XXE, entity expansion, XSD loader reading files"; ebms-core IT #43):

- no DOCTYPE at all: a DTD has no place in SOAP 1.1 (SOAP 1.1 §3: "A SOAP message MUST NOT
  contain a Document Type Declaration"), in a CPA or a StUF envelope, so it is refused outright
  instead of being parsed and ignored; that also stops billion-laughs and external entities;
- no entity resolution, no network, no DTD loading, even if a later change let a DOCTYPE pass;
- a byte limit checked before parsing, and libxml2's own nesting limit (256 levels without
  ``huge_tree``) left in force;
- no processing instructions other than the XML declaration are ever interpreted.
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


# One parser per thread: an lxml parser object serialises the threads that share it, and the
# inbound server parses on a pool of threads.
_PARSERS = threading.local()


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = _new_parser()
    return parser


def parse(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "XML") -> etree._Element:
    """Parse ``data`` safely and return the root element.

    ``what`` names the input in error messages ("CPA", "SOAP envelope"). Raises
    ``XmlTooLargeError``, ``UnsafeXmlError`` or ``XmlError``; never an lxml exception.
    """
    if len(data) > max_bytes:
        raise XmlTooLargeError(f"{what} is {len(data)} bytes, over the limit of {max_bytes} bytes")
    head = data[:_PROLOG_SCAN]
    if _DOCTYPE.search(head) or _ENTITY.search(head):
        raise UnsafeXmlError(f"{what} contains a DOCTYPE or entity declaration, which is not allowed")
    try:
        root = etree.fromstring(data, parser=_parser())
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
