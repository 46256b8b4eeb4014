"""``parse_outline`` builds small documents in C and cuts them (``_outline_in_c``); the Python
target (``_outline_by_target``) builds the rest event by event. Both must give the same outline
and the same refusal for every document: a differential test over generated documents with
namespaces, comments, processing instructions, CDATA, character references, tails around dropped
subtrees, depths at and over the limit, and broken variants of each. Any disagreement fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from ggk_ebms import xml
from ggk_ebms.errors import UnsafeXmlError, XmlTooLargeError
from ggk_ebms.xml import OUTLINE_IN_C_MAX, parse_outline

MAX = 1 << 20
URIS = ("urn:iwmo", "urn:other")
TAGS = ("Header", "Bericht", "Client", "Id", "x")


def header(tag: str) -> bool:
    return tag.endswith("}Header") or tag == "Header"


KEEPS: dict[str, Callable[[str], bool]] = {
    "header": header,
    "all": lambda _tag: True,
    "none": lambda _tag: False,
}


@st.composite
def texts(draw: st.DrawFn) -> str:
    pieces = draw(
        st.lists(
            st.sampled_from(
                [
                    "",
                    " ",
                    "\n  ",
                    "t",
                    "4",
                    "&amp;",
                    "&#65;",
                    "&lt;x&gt;",
                    "<![CDATA[a<b]]>",
                    "é",
                    "&#x1F600;",
                ]
            ),
            max_size=3,
        )
    )
    return "".join(pieces)


@st.composite
def misc(draw: st.DrawFn) -> str:
    """What may stand between elements: text, a comment or a processing instruction."""
    kind = draw(st.sampled_from(["text", "text", "comment", "pi"]))
    if kind == "comment":
        return f"<!--{draw(st.sampled_from(['', ' c ', 'a-b']))}-->"
    if kind == "pi":
        return f"<?{draw(st.sampled_from(['pi', 'x-y']))} {draw(st.sampled_from(['', 'd', 'a b']))}?>"
    return draw(texts())


@st.composite
def elements(draw: st.DrawFn, depth: int) -> str:
    local = draw(st.sampled_from(TAGS))
    prefix = draw(st.sampled_from(["", "", "p:", "q:"]))
    declarations = ""
    if depth > 0 and draw(st.booleans()):  # the root declares p and q itself (documents)
        declarations += f' xmlns:{draw(st.sampled_from(["p", "q"]))}="{draw(st.sampled_from(URIS))}"'
    if draw(st.integers(0, 4)) == 0:
        declarations += f' xmlns="{draw(st.sampled_from(URIS))}"'
    attributes = ' a="1"' if draw(st.booleans()) else ""
    if draw(st.integers(0, 5)) == 0:
        attributes += f' p:b="{draw(st.sampled_from(["&amp;2", "&#38;#38;", "&lt;&#65;", "x&amp;amp;y"]))}"'
    children = []
    if depth < 5:
        for _ in range(draw(st.integers(0, 3 if depth < 2 else 1))):
            children.append(draw(misc()))
            children.append(draw(elements(depth + 1)))
    children.append(draw(misc()))
    tag = prefix + local
    return f"<{tag}{declarations}{attributes}>{draw(texts())}{''.join(children)}</{tag}>"


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    prolog = draw(st.sampled_from(["", '<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0'?>\n"]))
    before = draw(st.sampled_from(["", "<!-- before -->", "<?pi before?>\n"]))
    after = draw(st.sampled_from(["", "<!-- after -->", "\n"]))
    # The root declares p and q so most prefixed names are bound; an unbound one is a broken case.
    root = draw(elements(0)).replace(">", f' xmlns:p="{URIS[0]}" xmlns:q="{URIS[1]}">', 1)
    data = (prolog + before + root + after).encode()
    damage = draw(st.integers(0, 9))
    if damage == 0 and len(data) > 2:  # cut short
        data = data[: draw(st.integers(len(data) // 2, len(data) - 1))]
    elif damage == 1:  # a stray character where markup goes
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"<", b"&", b"]]>", b"\x00"])) + data[at:]
    return data


@dataclass
class Paths:
    in_c: int = 0
    refused: int = 0


Shape = tuple[object, ...]


def canonical(element: etree._Element) -> Shape:
    """What a reader of the outline can tell apart: each element's name (Clark notation), its
    attributes, the namespaces in scope, its text and tail, and its children in order. Not the
    prefix an element is written with when two prefixes name one namespace, nor a namespace
    declared again on a child: libxml2 and the TreeBuilder choose differently there, and no
    reader sees it."""
    return (
        element.tag,
        sorted(element.attrib.items()),
        sorted((prefix or "", uri) for prefix, uri in element.nsmap.items()),
        element.text,
        element.tail,
        [canonical(child) for child in element],
    )


def _outcome(build: Callable[[], etree._Element]) -> tuple[str, str | Shape]:
    try:
        return "ok", canonical(build())
    except (xml.XmlError, UnsafeXmlError) as exc:
        return type(exc).__name__, str(exc)


def _compare(data: bytes, keep: str, max_depth: int, paths: Paths) -> None:
    kept = KEEPS[keep]
    by_target = _outcome(
        lambda: xml._outline_by_target(data, keep=kept, pick=None, what="payload", max_depth=max_depth)
    )
    in_c = xml._outline_in_c(data, kept, max_depth)
    if in_c is not None:
        paths.in_c += 1
        assert ("ok", canonical(in_c)) == by_target, data
    if by_target[0] != "ok":
        paths.refused += 1
    public = _outcome(
        lambda: parse_outline(data, max_bytes=MAX, keep=kept, what="payload", max_depth=max_depth)
    )
    assert public == by_target, data


def _run(examples: int) -> Paths:
    paths = Paths()

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(
        data=documents(),
        keep=st.sampled_from(sorted(KEEPS)),
        max_depth=st.sampled_from([2, 3, 4, 256, 256, 256]),
    )
    def check(data: bytes, keep: str, max_depth: int) -> None:
        _compare(data, keep, max_depth, paths)

    check()
    return paths


def test_the_outline_built_in_c_is_the_outline_the_target_builds() -> None:
    paths = _run(1500)
    # Both sides of the comparison were exercised: most documents were cut from the C tree, and
    # a good share were refused (broken, too deep) and answered by the target.
    assert paths.in_c > 500, paths
    assert paths.refused > 150, paths


def test_tails_of_dropped_children_join_the_text_before_them() -> None:
    data = b'<r xmlns="urn:t">a<Body>x</Body>b<Header>h</Header>c<Body/>d<!--e-->f<Header/>g<Body/></r>'
    root = xml._outline_in_c(data, header, 256)
    assert root is not None
    assert etree.tostring(root) == b'<r xmlns="urn:t">ab<Header>h</Header>cdf<Header/>g</r>'
    assert etree.tostring(root) == etree.tostring(
        xml._outline_by_target(data, keep=header, pick=None, what="t", max_depth=256)
    )


@pytest.mark.parametrize(
    ("data", "max_depth"),
    [
        (b"<r><a><b/></a></r>", 2),  # an element at depth 2: the limit
        (b"<r><a>&undefined;</a></r>", 256),
        (b"<r><a></r>", 256),
        (b"", 256),
        (b"<r/><r/>", 256),
    ],
)
def test_what_the_c_parse_does_not_take_is_left_to_the_target(data: bytes, max_depth: int) -> None:
    assert xml._outline_in_c(data, header, max_depth) is None
    with pytest.raises(xml.XmlError):
        parse_outline(data, max_bytes=MAX, keep=header, max_depth=max_depth)


def test_large_documents_and_picked_outlines_keep_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over ``OUTLINE_IN_C_MAX``, or when elements are picked from the dropped subtrees (the
    koppeltabel's identifiers), the whole tree is never built."""
    calls: list[int] = []
    monkeypatch.setattr(xml, "_outline_in_c", lambda data, keep, depth: calls.append(len(data)))
    big = b"<r><Header/><Body>" + b"<x>1</x>" * (OUTLINE_IN_C_MAX // 8) + b"</Body></r>"
    assert etree.tostring(parse_outline(big, max_bytes=MAX, keep=header)) == b"<r><Header/></r>"
    small = b"<r><Header/><Body><Id>7</Id></Body></r>"
    picked = parse_outline(small, max_bytes=MAX, keep=header, pick=lambda tag: tag == "Id")
    assert etree.tostring(picked) == b"<r><Header/><Id>7</Id></r>"
    assert calls == []
    # Small and nothing picked: the C path is asked (patched here to decline, so the target answers).
    assert etree.tostring(parse_outline(small, max_bytes=MAX, keep=header)) == b"<r><Header/></r>"
    assert calls == [len(small)]


def test_refusals_before_either_parse_are_unchanged() -> None:
    with pytest.raises(XmlTooLargeError):
        parse_outline(b"<r/>" + b" " * 100, max_bytes=50, keep=header)
    with pytest.raises(UnsafeXmlError, match="DOCTYPE"):
        parse_outline(b"<!DOCTYPE r []><r/>", max_bytes=MAX, keep=header)


@pytest.mark.parametrize("value", ["x&amp;y", "&#38;", "&amp;#38;", "&lt;&#65;&amp;amp;", "plain"])
def test_both_targets_read_attribute_values_as_a_tree_parse_does(value: str) -> None:
    """The streaming parse of a large StUF envelope and the outline read an attribute as the
    whole-tree parse of a small one does."""
    data = f'<r a="{value}"><Header b="{value}"/><Body c="{value}"/></r>'.encode()
    expected = xml.parse(data)
    streamed, _sinks = xml.parse_streaming_text(data, max_bytes=MAX, sink_for=lambda _tag: None)
    outlined = xml._outline_by_target(data, keep=lambda _tag: True, pick=None, what="t", max_depth=256)
    for root in (streamed, outlined):
        assert [dict(el.attrib) for el in root.iter()] == [dict(el.attrib) for el in expected.iter()]


@pytest.mark.parametrize(("levels", "taken"), [(256, True), (257, False)])
def test_at_the_default_depth_limit_libxml2_refuses_what_the_target_refuses(levels: int, taken: bool) -> None:
    """The C path leaves the default limit (256 levels) to libxml2, which refuses the 257th level
    without huge_tree: the same document the target refuses. Should libxml2 ever move its limit,
    this fails instead of the two paths parting."""
    data = ("<a>" * levels + "</a>" * levels).encode()
    assert (xml._outline_in_c(data, header, xml.DEFAULT_MAX_DEPTH) is not None) is taken
    by_target = _outcome(
        lambda: xml._outline_by_target(
            data, keep=header, pick=None, what="t", max_depth=xml.DEFAULT_MAX_DEPTH
        )
    )
    assert by_target[0] == ("ok" if taken else "UnsafeXmlError")
    assert _outcome(lambda: parse_outline(data, max_bytes=MAX, keep=header, what="t")) == by_target
