"""The one hardened XML entry point. Every byte of XML the endpoint reads goes through ``parse``.

Rules (docs/rules.md "XXE, entity expansion, XSD loader reading files"; ebms-core IT #43):

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
(Specificaties GGk 2.1.04, versie 4, on the message size), while libxml2 refuses any text
node over 10 MB unless ``XML_PARSE_HUGE`` is set. ``huge_tree`` lifts that text-node cap and
libxml2's depth cap (256 to 2048); everything that makes XML dangerous stays off (no DOCTYPE, no
entities, no DTD, no network), the byte limit is still checked before parsing, so the memory a
document can take is bounded by that limit, and the nesting depth is checked again by us against
the same 256 levels the default parser enforces. See docs/security.md "Large StUF envelopes".
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, Protocol, TypeVar

from lxml import etree

from ggk_ebms.errors import UnsafeXmlError, XmlError, XmlTooLargeError
from ggk_ebms.spool import SpooledRange

DEFAULT_MAX_BYTES: Final = 32 * 1024 * 1024

# A DOCTYPE can only stand in the prolog, so the first bytes tell. 64 KiB of prolog (comments,
# whitespace) is more than any honest document carries; past that we parse and check docinfo.
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
_PROLOG_SCAN: Final = 64 * 1024


def _new_parser(*, huge_tree: bool = False, target: Any = None) -> etree.XMLParser:
    """The one hardened parser configuration: no entities, no DTD, no network, no ID table.

    ``huge_tree`` lifts libxml2's text-node limit for the large-message paths, which bound the
    input themselves; ``target`` receives the parse events instead of a tree being built.
    """
    return etree.XMLParser(
        target=target,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=huge_tree,
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


# libxml2's default nesting limit without XML_PARSE_HUGE; parse_large_text keeps it.
DEFAULT_MAX_DEPTH: Final = 256
_LARGE = threading.local()  # one huge_tree parser per thread: lxml serialises a shared parser


def _large_parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_LARGE, "parser", None)
    if parser is None:
        parser = _new_parser(huge_tree=True)
        _LARGE.parser = parser
    return parser


def parse(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "XML") -> etree._Element:
    """Parse ``data`` safely and return the root element.

    ``what`` names the input in error messages ("CPA", "SOAP envelope"). Raises
    ``XmlTooLargeError``, ``UnsafeXmlError`` or ``XmlError``; never an lxml exception.
    """
    return _parse_with(_parser(), data, max_bytes=max_bytes, what=what)


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
    if _deeper_than(max_depth)(root):
        raise UnsafeXmlError(f"{what} nests elements deeper than {max_depth} levels")
    return root


class TextSink(Protocol):
    """Takes the text of one element as it streams out of the parser, piece by piece."""

    def feed(self, text: str) -> None: ...


def parse_streaming_text(
    data: bytes | SpooledRange,
    *,
    max_bytes: int,
    sink_for: Callable[[str], TextSink | None],
    what: str = "XML",
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> tuple[etree._Element, dict[etree._Element, TextSink]]:
    """``parse_large_text`` that hands the text of chosen elements to a sink instead of the tree.

    ``sink_for(tag)`` (Clark notation) gives a sink for an element whose direct text should stream
    out, or None. Such an element ends up in the tree without text, and the returned map leads from
    it to its sink. A StUF envelope's base64 payload is decoded this way as libxml2 reads it, so
    neither libxml2 nor Python ever holds the 25 MB of text whole. Same refusals as ``parse``; the
    DOCTYPE callback refuses too, and the depth is counted while parsing. A ``SpooledRange``
    (ggk_ebms/spool.py) is fed to the parser slice by slice, so the document itself is not held
    whole either.
    """
    size = len(data) if isinstance(data, bytes) else data.size
    if size > max_bytes:
        raise XmlTooLargeError(f"{what} is {size} bytes, over the limit of {max_bytes} bytes")
    head = data[:_PROLOG_SCAN] if isinstance(data, bytes) else data.head(_PROLOG_SCAN)
    if _DOCTYPE.search(head) or _ENTITY.search(head):
        raise UnsafeXmlError(f"{what} contains a DOCTYPE or entity declaration, which is not allowed")
    with _target_parser(_DivertingTarget) as (parser, target):
        target.reset(sink_for, what, max_depth)
        root = _parse_target(parser, data, target, what)
        return root, target.sinks


def parse_outline(
    data: bytes,
    *,
    max_bytes: int,
    keep: Callable[[str], bool],
    pick: Callable[[str], bool] | None = None,
    what: str = "XML",
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> etree._Element:
    """Check the whole document (well-formed, hardened as ``parse``) but build only its outline:
    the root and those of its children ``keep(tag)`` accepts, with their subtrees.

    ``pick(tag)``: elements deeper in the dropped subtrees that are kept too, with their subtrees,
    as children of the root (their ancestors are not built): the identifiers the koppeltabel
    reads from anywhere in a payload.

    For a payload of which only the header is read (an iWmo/iJw message's ``Header``), this keeps
    memory at the size of that header instead of a tree of the whole message, which for 18 MB of
    iStandaarden XML is several times the document itself.
    """
    if len(data) > max_bytes:
        raise XmlTooLargeError(f"{what} is {len(data)} bytes, over the limit of {max_bytes} bytes")
    head = data[:_PROLOG_SCAN]
    if _DOCTYPE.search(head) or _ENTITY.search(head):
        raise UnsafeXmlError(f"{what} contains a DOCTYPE or entity declaration, which is not allowed")
    if pick is None and len(data) <= OUTLINE_IN_C_MAX:
        root = _outline_in_c(data, keep, max_depth)
        if root is not None:
            return root
    return _outline_by_target(data, keep=keep, pick=pick, what=what, max_depth=max_depth)


def _outline_by_target(
    data: bytes, *, keep: Callable[[str], bool], pick: Callable[[str], bool] | None, what: str, max_depth: int
) -> etree._Element:
    """The outline built event by event by ``_OutlineTarget``: the whole tree is never there."""
    with _target_parser(_OutlineTarget) as (parser, target):
        target.reset(keep, what, max_depth, pick)
        return _parse_target(parser, data, target, what)


# Up to this size ``parse_outline`` lets libxml2 build the whole tree in C and then cuts it to
# the outline: for a 1.5 KB iWmo payload that is 26 instead of 68 microseconds, because the
# target calls Python for every element, text and end tag (docs/performance.md, "Fixed statement
# texts and the outline in C"). The tree of 256 KiB of XML is a few MB for a moment; anything
# larger keeps the target, which never holds the whole tree (docs/performance.md "Memory").
OUTLINE_IN_C_MAX: Final = 256 * 1024
_PRUNING = threading.local()  # one parser per thread: lxml serialises a shared parser


def _pruning_parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_PRUNING, "parser", None)
    if parser is None:
        # ``_new_parser``'s hardening, and comments and processing instructions left out as
        # ``_OutlineTarget`` leaves them out: the text around them joins as it does there.
        parser = _PRUNING.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
            remove_comments=True,
            remove_pis=True,
            collect_ids=False,
        )
    return parser


@functools.lru_cache(maxsize=16)
def _deeper_than(max_depth: int) -> etree.XPath:
    """Is there an element at depth ``max_depth`` or deeper? One XPath in C, compiled once."""
    return etree.XPath(f"boolean(/{'*/' * max_depth}*)")


def _outline_in_c(data: bytes, keep: Callable[[str], bool], max_depth: int) -> etree._Element | None:
    """The outline ``_outline_by_target`` builds, from the whole tree: the root's children that
    ``keep`` refuses are cut out, and their tails join the text before them, where the target's
    TreeBuilder puts text that follows a dropped subtree.

    None for any document this parse does not take as it is: not well-formed, too deep for
    ``max_depth`` (libxml2's own limit without huge_tree is 256), a DTD, a node that is no
    element. The target then parses it and refuses it in its own words, so errors stay as they
    were (``tests/test_xml_outline.py`` holds the two to the same trees and the same errors).
    """
    try:
        root = etree.fromstring(data, parser=_pruning_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root is None or root.getroottree().docinfo.internalDTD is not None:
        return None
    # The target refuses an element at depth max_depth (the root at 0). libxml2 without huge_tree
    # refuses exactly that for 256 (DEFAULT_MAX_DEPTH; tests/test_xml_outline.py holds it to it),
    # so only a lower limit needs the probe.
    if max_depth < DEFAULT_MAX_DEPTH and _deeper_than(max_depth)(root):
        return None
    kept: etree._Element | None = None
    for child in list(root):
        if not isinstance(child.tag, str):
            return None
        if keep(child.tag):
            kept = child
            continue
        if child.tail:
            if kept is None:
                root.text = (root.text or "") + child.tail
            else:
                kept.tail = (kept.tail or "") + child.tail
        root.remove(child)
    return root


_Target = TypeVar("_Target", "_DivertingTarget", "_OutlineTarget")
_TARGET_PARSERS = threading.local()  # per thread: target class -> (parser, target), idle ones


@contextmanager
def _target_parser(kind: type[_Target]) -> Iterator[tuple[etree.XMLParser, _Target]]:
    """A huge_tree parser bound to a target of ``kind``, kept per thread and reused.

    lxml inspects a Python target's ``start`` (``inspect.getfullargspec``, to learn whether it
    takes the namespace map) when it makes a parser with it, and that cost more than parsing a
    2 KB StUF envelope (docs/performance.md, "The delivery worker's batch"). So each thread keeps
    one parser per target kind and the target is ``reset`` for every parse. A parse that raised
    leaves its pair behind (the next parse makes a fresh one); a parse inside a parse of the same
    kind and thread gets a pair of its own.
    """
    idle: dict[type[Any], tuple[etree.XMLParser, Any]] = _TARGET_PARSERS.__dict__.setdefault("idle", {})
    pair = idle.pop(kind, None)
    if pair is None:
        target = kind()
        pair = (_new_parser(huge_tree=True, target=target), target)
    yield pair
    pair[1].forget()  # the caller has what it needs; an idle target must not keep it alive
    idle[kind] = pair  # only reached when the parse did not raise


def _parse_target(
    parser: etree.XMLParser, data: bytes | SpooledRange, target: _DivertingTarget | _OutlineTarget, what: str
) -> etree._Element:
    try:
        if isinstance(data, bytes):
            root = etree.fromstring(data, parser=parser)
        else:
            for piece in data.slices():
                parser.feed(bytes(piece))
            root = parser.close()
    except (etree.XMLSyntaxError, UnsafeXmlError, ValueError) as exc:
        # A refusal raised in a callback stops the parse; lxml reports it as a syntax error.
        if target.refusal is not None:
            raise target.refusal from None
        if isinstance(exc, UnsafeXmlError):
            raise
        if isinstance(exc, etree.XMLSyntaxError):
            raise XmlError(f"{what} is not well-formed XML: {_syntax_message(exc)}") from None
        raise XmlError(f"{what} could not be parsed: {exc}") from None
    if target.refusal is not None:
        raise target.refusal
    if not isinstance(root, etree._Element):
        raise XmlError(f"{what} is empty")
    return root


def _keep_all(_tag: str) -> bool:
    return True


def _no_sink(_tag: str) -> TextSink | None:
    return None


class _Refusing:
    """Shared by the targets: DOCTYPE and depth refusals, kept because lxml rewraps them."""

    what: str
    max_depth: int
    refusal: UnsafeXmlError | None

    def _refuse(self, message: str) -> None:
        self.refusal = UnsafeXmlError(message)
        raise self.refusal

    def doctype(self, *args: object) -> None:
        self._refuse(f"{self.what} contains a DOCTYPE, which is not allowed")

    def _check_depth(self, depth: int) -> None:
        if depth >= self.max_depth:
            self._refuse(f"{self.what} nests elements deeper than {self.max_depth} levels")

    def comment(self, text: str) -> None:
        """Comments carry nothing our readers use; they stay out of the tree."""

    def pi(self, target: str, data: str | None = None) -> None:
        """Processing instructions are never interpreted (module rules); dropped."""


def _namespaces(nsmap: dict[str | None, str] | None) -> dict[str | None, str]:
    # lxml's target interface names the default namespace '', TreeBuilder wants None.
    return {(prefix or None): uri for prefix, uri in (nsmap or {}).items()}


def _attributes(attrib: dict[str, str]) -> dict[str, str]:
    """The attribute values a tree parse gives. Without entity substitution (our hardening)
    libxml2 hands a target every '&' of an attribute value as the reference '&#38;' (``a="&amp;"``
    arrives as '&#38;', ``a="&amp;#38;"`` as '&#38;#38;'); turning each back gives the value
    itself, as ``parse`` reads it (tests/test_xml_outline.py found the difference)."""
    if not any("&" in value for value in attrib.values()):
        return attrib
    return {name: value.replace("&#38;", "&") for name, value in attrib.items()}


class _OutlineTarget(_Refusing):
    """An lxml parser target that builds the outline ``parse_outline`` describes."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Drop what the last parse left (its tree and callbacks) while the target waits."""
        self.reset(_keep_all, "XML", DEFAULT_MAX_DEPTH)

    def reset(
        self,
        keep: Callable[[str], bool],
        what: str,
        max_depth: int,
        pick: Callable[[str], bool] | None = None,
    ) -> None:
        """Ready for the next parse: a new builder and no state of the last one."""
        self.builder: Any = etree.TreeBuilder()
        self.keep = keep
        self.pick = pick
        self.what = what
        self.max_depth = max_depth
        self.refusal = None
        self.depth = 0
        self.skipping_from: int | None = None  # depth of the dropped subtree's root
        self.picked_from: int | None = None  # depth of a picked element inside a dropped subtree

    def _building(self) -> bool:
        return self.skipping_from is None or self.picked_from is not None

    def start(self, tag: str, attrib: dict[str, str], nsmap: dict[str | None, str] | None = None) -> None:
        self._check_depth(self.depth)
        if self.skipping_from is None and self.depth == 1 and not self.keep(tag):
            self.skipping_from = self.depth
        dropped = self.skipping_from is not None and self.picked_from is None
        if dropped and self.pick is not None and self.pick(tag):
            self.picked_from = self.depth
        if self._building():
            self.builder.start(tag, _attributes(attrib), _namespaces(nsmap))
        self.depth += 1

    def data(self, text: str) -> None:
        if self._building():
            self.builder.data(text)

    def end(self, tag: str) -> None:
        self.depth -= 1
        if self._building():
            self.builder.end(tag)
        if self.depth == self.picked_from:
            self.picked_from = None
        if self.depth == self.skipping_from:
            self.skipping_from = None

    def close(self) -> etree._Element:
        root: etree._Element = self.builder.close()
        return root


class _DivertingTarget(_Refusing):
    """An lxml parser target: a TreeBuilder, except for the text of elements that have a sink."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Drop what the last parse left (its tree and its sinks, which may hold a decoded
        payload or its temporary file) while the target waits."""
        self.reset(_no_sink, "XML", DEFAULT_MAX_DEPTH)

    def reset(self, sink_for: Callable[[str], TextSink | None], what: str, max_depth: int) -> None:
        """Ready for the next parse. ``sinks`` is a new map: the last parse's caller keeps its own."""
        self.builder: Any = etree.TreeBuilder()
        self.sink_for = sink_for
        self.what = what
        self.max_depth = max_depth
        self.open: list[TextSink | None] = []
        self.sinks: dict[etree._Element, TextSink] = {}
        self.refusal = None

    def start(self, tag: str, attrib: dict[str, str], nsmap: dict[str | None, str] | None = None) -> None:
        self._check_depth(len(self.open))
        self.builder.start(tag, _attributes(attrib), _namespaces(nsmap))
        self.open.append(self.sink_for(tag))

    def data(self, text: str) -> None:
        sink = self.open[-1] if self.open else None
        if sink is None:
            self.builder.data(text)
        else:
            sink.feed(text)

    def end(self, tag: str) -> None:
        element: etree._Element = self.builder.end(tag)  # lxml-stubs say None; it is the element
        sink = self.open.pop()
        if sink is not None:
            self.sinks[element] = sink

    def close(self) -> etree._Element:
        root: etree._Element = self.builder.close()
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


def local_name(element: etree._Element) -> str:
    """An element's name without its namespace: ``etree.QName(element).localname``.

    Read off the Clark-notation tag, because building a QName parses the tag again and cost more
    than the whole outline parse in unwrap's payload detection (docs/performance.md, round 10).
    Elements only: a comment's or PI's tag is no string.
    """
    tag: str = element.tag  # an element's tag is its Clark name
    return tag[tag.rfind("}") + 1 :]


def namespace_of(element: etree._Element) -> str | None:
    """An element's namespace URI, or None (``etree.QName(element).namespace``); elements only."""
    tag: str = element.tag
    return tag[1 : tag.index("}")] if tag[:1] == "{" else None


def qname(ns: str, local: str) -> str:
    """Clark notation ``{ns}local``."""
    return f"{{{ns}}}{local}"
